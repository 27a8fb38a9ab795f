"""Database connections of the studio's long-lived threads, and the queue files' sync setting."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from peewee import OperationalError

from app.db import Job, connection, db, keep_connection, open_db
from app.queue import JobQueue, LaneHuey


def _on_thread(fn):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_kept_thread_reuses_one_connection_and_others_close_theirs(tmp_path):
    open_db(tmp_path / "studio.db")

    def kept():
        keep_connection()
        seen = []
        for _ in range(3):
            with connection():
                Job.select().count()
                seen.append(id(db.connection()))
        return seen, db.is_closed()

    seen, closed = _on_thread(kept)
    assert len(set(seen)) == 1 and not closed  # one connection for every block, still open after

    def plain():
        with connection():
            Job.select().count()
        return db.is_closed()

    assert _on_thread(plain) is True  # a thread that did not ask keeps nothing open


def test_a_failure_on_the_connection_closes_a_kept_one_and_the_next_block_opens_afresh(tmp_path):
    open_db(tmp_path / "studio.db")

    def run():
        keep_connection()
        with connection():
            first = db.connection()  # (a reference: an id could be reused by the next one)
        with pytest.raises(OperationalError):
            with connection():
                db.execute_sql("select * from no_such_table")
        closed_after_error = db.is_closed()
        with connection():
            Job.select().count()
            second = db.connection()
        return closed_after_error, first is not second

    assert _on_thread(run) == (True, True)


def test_a_kept_connection_follows_the_database_when_it_is_opened_again(tmp_path):
    """A new workspace (tests, a moved workspace) binds a new database: a kept thread uses it, not the old."""
    ready, go, done = threading.Event(), threading.Event(), {}

    def worker():
        keep_connection()
        with connection():
            done["first"] = Job.select().count()
        ready.set()
        go.wait(30)
        with connection():
            done["second"] = Job.select().count()

    open_db(tmp_path / "a.db")
    thread = threading.Thread(target=worker)
    thread.start()
    ready.wait(30)
    open_db(tmp_path / "b.db")
    with connection():
        Job.create(id="only-in-b", engine="x", kind="cloud", lane="io", prompt="p")
    go.set()
    thread.join(30)
    assert done == {"first": 0, "second": 1}


def test_queue_workers_run_the_setup_once_on_their_own_thread(tmp_path):
    calls, steps = [], threading.Event()

    def setup():
        calls.append(threading.current_thread().name)

    queue = JobQueue(tmp_path / "queue", lambda job_id, token=None: steps.set(), gpu_workers=0, io_workers=2,
                     worker_setup=setup)
    queue.start()
    try:
        queue.enqueue("io", "job-1")
        assert steps.wait(10)
    finally:
        queue.stop()
        queue.close()
    assert len(calls) == 2 and threading.current_thread().name not in calls


@pytest.mark.parametrize("mode, expected", [("wal", 1), ("delete", 2)])
def test_the_queue_file_commits_without_an_fsync_in_wal_mode(tmp_path, mode, expected):
    """synchronous=NORMAL under WAL (a commit is not an fsync), FULL with a rollback journal."""
    huey = LaneHuey("x", filename=str(tmp_path / "q.db"), journal_mode=mode, results=False)
    assert huey.storage.conn.execute("pragma synchronous").fetchone()[0] == expected
    huey.storage.close()
    with sqlite3.connect(tmp_path / "q.db") as check:  # the file is a normal huey queue
        assert check.execute("select count(*) from task").fetchone()[0] == 0


def test_the_queue_file_closes_once_when_several_threads_close_it(tmp_path):
    """A studio stopped twice at once (its server's lifespan and a signal) closes each lane once."""
    huey = LaneHuey("x", filename=str(tmp_path / "q.db"), journal_mode="wal", results=False)
    for _ in range(20):
        huey.storage.conn  # noqa: B018 - opens it
        barrier, results = threading.Barrier(8), []

        def close():
            barrier.wait(5)
            results.append(huey.storage.close())

        threads = [threading.Thread(target=close) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(results) == [False] * 7 + [True]
