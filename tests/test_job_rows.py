"""A job row written with its INSERT built once (``Job.add``) is the row ``Job.create`` writes."""

from __future__ import annotations

import pytest

from app import jobstate
from app.db import Job, db, open_db


@pytest.fixture
def database(tmp_path):
    open_db(tmp_path / "studio.db")
    return db


def columns(job_id: str) -> dict:
    cursor = db.execute_sql('SELECT * FROM "jobs" WHERE "id" = ?', (job_id,))
    names = [d[0] for d in cursor.description]
    return {k: v for k, v in zip(names, cursor.fetchone()) if k != "id"}


SHAPES = [
    {"engine": "dashscope", "kind": "cloud", "lane": "io", "prompt": "剑仙御剑穿过云海 <b>"},
    {"engine": "dashscope", "kind": "cloud", "lane": "io", "prompt": "雪", "params": {"seed": 7, "size": "832*480"},
     "images": [{"role": "first_frame", "path": "uploads/a.png"}], "project": "qingyun", "user": None},
    {"engine": "wan-t2v", "kind": "local", "lane": "gpu", "prompt": "", "request": {"n": 1e300}, "info": {"a": [1, 2]},
     "parent": "p" * 32, "source": "project"},
]


@pytest.mark.parametrize("fields", SHAPES)
def test_add_writes_what_create_writes(database, fields):
    for round_ in range(3):  # the first builds the statement, the next ones reuse it
        added = Job.add(id=f"a{round_}" + "a" * 30, created_at=1.5, updated_at=2.5, **fields)
        created = Job.create(id=f"c{round_}" + "c" * 30, created_at=1.5, updated_at=2.5, **fields)
        assert columns(added.id) == columns(created.id)
        found = Job.find(added.id)
        assert (found.params, found.images, found.status, found.prompt) == (
            created.params, created.images, "queued", fields["prompt"])
        assert not added.is_dirty()


def test_shapes_get_their_own_statement_and_create_fills_the_defaults(database):
    first = jobstate.create(engine="dashscope", kind="cloud", lane="io", prompt="a")
    second = jobstate.create(engine="dashscope", kind="cloud", lane="io", prompt="b", project="p")
    row = Job.find(second.id)
    assert row.project == "p" and row.status == "queued" and row.created_at and row.info == {}
    assert Job.find(first.id).project is None
    assert len(db.obj._xianying_insert_job) == 2


def test_a_duplicate_id_is_refused_as_create_refuses_it(database):
    from peewee import IntegrityError

    Job.add(id="x" * 32, engine="e", kind="cloud", lane="io")
    with pytest.raises(IntegrityError):
        Job.add(id="x" * 32, engine="e", kind="cloud", lane="io")


def test_a_batch_gets_its_queue_ids_in_one_statement(database):
    jobs = [jobstate.create(engine="dashscope", kind="cloud", lane="io", prompt=str(i)) for i in range(5)]
    jobstate.set_huey_id(jobs[4].id, "kept")
    with db.atomic():
        jobstate.set_huey_ids({job.id: f"huey-{i}" for i, job in enumerate(jobs[:4])} | {jobs[3].id: None})
    assert [Job.find(job.id).huey_id for job in jobs] == ["huey-0", "huey-1", "huey-2", None, "kept"]
    jobstate.set_huey_ids({})  # nothing to do


def test_a_chain_takes_its_first_poll_turn_with_the_task_id_and_only_in_its_own_run(database):
    """``remote_created(turn=True)`` leaves ``polls`` as ``take_turn(.., 0)`` would (a cloud chain saves that
    trip), and with ``fence`` neither write touches a run claimed after it (a retried job's new run)."""
    job = jobstate.create(engine="dashscope", kind="cloud", lane="io", prompt="御剑")
    assert jobstate.claim(job.id, "me", 60, creating=True)
    fence = Job.find(job.id).fence
    assert jobstate.remote_created(job.id, "task-1", while_running=True, turn=True, fence=fence)
    row = Job.find(job.id)
    assert (row.remote_id, row.polls, row.remote_phase) == ("task-1", 1, "polling")
    assert not jobstate.take_turn(job.id, 0, not_cancelled=True, fence=fence)  # that turn is taken
    assert jobstate.take_turn(job.id, 1, not_cancelled=True, fence=fence)
    # cancelled, retried and claimed again: the old run's token and task id no longer apply
    jobstate.cancelled_now(job.id, "cancelled")
    assert jobstate.reset_for_retry(Job.find(job.id))
    assert jobstate.claim(job.id, "me", 60, creating=True)
    assert not jobstate.remote_created(job.id, "task-old", while_running=True, turn=True, fence=fence)
    assert jobstate.remote_created(job.id, "task-2", while_running=True, turn=True, fence=fence + 1)
    assert not jobstate.take_turn(job.id, 1, not_cancelled=True, fence=fence)
    row = Job.find(job.id)
    assert (row.remote_id, row.polls, row.status) == ("task-2", 1, "running")
