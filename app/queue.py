"""Huey lanes and their embedded consumers.

Two lanes, each its own ``SqliteHuey`` file under ``<workspace>/queue/``:

* ``gpu`` — local engines; ``gpu_pool.max_concurrent`` workers (default 1).
* ``io``  — cloud create/poll/download steps; a few workers, none of which ever waits on a
  vendor (a poll checks once and re-schedules itself).

Tasks carry only a job id; the job row says everything else. A worker asleep between polls
is woken at once when this process enqueues, so a new job starts in milliseconds.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from huey import SqliteHuey
from huey.consumer import Consumer, Worker
from huey.signals import SIGNAL_ENQUEUED
from huey.storage import SqliteStorage
from huey.utils import normalize_time

from core.errors import ConfigError
from core.platform import sqlite_journal_mode

from .backends import POSTGRES_SCHEMES, REDIS_SCHEMES, need_module, redact, scheme_of

log = logging.getLogger(__name__)

LANES = ("gpu", "io")
RESUMED = 10  # priority of a job whose run was interrupted: it keeps its place before later jobs


class Waker:
    """Wakes idle workers of this process when a task is enqueued."""

    def __init__(self):
        self._cond = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self.generation != seen, timeout)
            return self.generation


class LaneStorage(SqliteStorage):
    """Huey's SQLite storage, with ``synchronous=NORMAL`` in WAL mode (as ``studio.db``): huey sets FULL
    or OFF, and FULL is an fsync at every commit, under the one lock that all the lane's workers share
    (two per step: taking the message, then its revoke key). 500 cloud steps took 0.8 s to leave the
    queue. A message that a power cut takes back is re-sent at the next start: the job row is the truth
    and ``JobRunner.reconcile`` re-queues a queued job that has no message."""

    def close(self):
        """Huey reads ``_conn`` before taking the lock: two stops at once (a server's lifespan and a
        signal) could both pass the check, and the second closed ``None``."""
        with self.lock:
            if self._conn is None:
                return False
            self._conn.close()
            self._conn = None
        return True

    def _create_connection(self):
        conn = super()._create_connection()
        if str(self._journal_mode).lower() == "wal":  # (rollback journal on a network drive: FULL stays)
            conn.execute("pragma synchronous=NORMAL")
        return conn


class LaneHuey(SqliteHuey):
    storage_class = LaneStorage
    waker: Waker | None = None

    def enqueue(self, task):
        result = super().enqueue(task)
        if self.waker is not None:
            self.waker.notify()
        return result


class _WakeableWorker(Worker):
    def loop(self, now=None):
        if not getattr(self, "_set_up", False):  # once, on this worker's own thread
            self._set_up = True
            setup = getattr(self.huey, "worker_setup", None)
            if setup is not None:
                setup()
        return super().loop(now)

    def sleep(self):
        waker: Waker | None = getattr(self.huey, "waker", None)
        if waker is None:
            return super().sleep()
        self.delay = min(self.delay, self.max_delay)
        seen = getattr(self, "_seen", 0)
        self._seen = waker.wait(seen, self.delay)
        if self._seen != seen:
            self.delay = self.default_delay
        else:
            self.delay *= self.backoff


class EmbeddedConsumer(Consumer):
    """A consumer that lives inside the app: it leaves signal handling to the app."""

    worker_class = _WakeableWorker

    def _set_signal_handlers(self):
        return None


def _as_runner_task(execute: Callable[..., None]) -> Callable[..., None]:
    """Huey names a task after its function's module: pin it to ``app.runner`` so every process
    (the studio, a team worker whose runner is a subclass) reads the others' tasks."""
    if getattr(execute, "__module__", None) == "app.runner":
        return execute

    def step(job_id, token=None):
        return execute(job_id, token)

    step.__module__ = "app.runner"
    return step


class JobQueue:
    """The lanes, the two task kinds, and consumers started/stopped with the app.

    ``execute(job_id, token)`` runs one step of a job (a local run, or a cloud create/poll);
    it is the job runner's entry point and decides itself what to do next.
    """

    def __init__(self, queue_dir: Path, execute: Callable[..., None], *, gpu_workers: int = 1,
                 io_workers: int = 4, immediate: bool = False, settings=None,
                 worker_setup: Callable[[], None] | None = None):
        """``worker_setup()`` runs once on each worker thread before its first step (the studio: keep
        the thread's database connection, ``app.db.keep_connection``)."""

        self.workers = {"gpu": gpu_workers, "io": io_workers}  # a lane with 0 workers is not consumed here
        self.hueys: dict[str, LaneHuey] = {}
        self.tasks = {}
        self.consumers: list[EmbeddedConsumer] = []
        self.outage: dict[str, tuple] = {}
        for lane in LANES:
            huey = make_lane(settings, lane, queue_dir=queue_dir, immediate=immediate)
            self.outage[lane] = queue_outage_errors(huey)
            huey.waker = Waker()
            huey.worker_setup = worker_setup
            self.hueys[lane] = huey
            self.tasks[lane] = huey.task(name=f"{lane}.step", retries=0)(_as_runner_task(execute))

    def enqueue(self, lane: str, job_id: str, delay: float | None = None, token: int | None = None,
                priority: int | None = None) -> str | None:
        """``priority``: higher runs first (``RESUMED`` for an interrupted run); a lane whose
        storage has no priorities (plain Redis) keeps plain FIFO order."""
        task = self.tasks[lane].s(job_id, token)
        if priority and getattr(self.hueys[lane].storage, "priority", False):
            task.priority = priority
        if delay:
            task.eta = normalize_time(delay=delay, utc=self.hueys[lane].utc)
        try:
            self.hueys[lane].enqueue(task)
        except self.outage[lane] as exc:  # team queue server down: the row stays queued; the monitor re-sends
            log.warning("queue %s unreachable (%s); job %s stays queued", lane, type(exc).__name__, job_id)
            return None
        return task.id

    def enqueue_many(self, lane: str, job_ids: list[str]) -> list[str | None]:
        """New jobs, in order (no delay, no priority): one transaction where the lane is a SQLite
        file, one message at a time elsewhere (Redis, Postgres, immediate mode)."""
        huey = self.hueys[lane]
        if huey.immediate or not isinstance(huey.storage, SqliteStorage):
            return [self.enqueue(lane, job_id) for job_id in job_ids]
        tasks = [self.tasks[lane].s(job_id, None) for job_id in job_ids]
        rows = []
        for task in tasks:
            huey._emit(SIGNAL_ENQUEUED, task)
            rows.append((huey.storage.name, huey.storage.to_blob(huey.serialize_task(task)), task.priority or 0))
        with huey.storage.db(commit=True) as cursor:
            cursor.executemany("insert into task (queue, data, priority) values (?, ?, ?)", rows)
        if huey.waker is not None:
            huey.waker.notify()
        return [task.id for task in tasks]

    def revoke(self, lane: str, task_id: str | None) -> None:
        if task_id:
            try:
                self.hueys[lane].revoke_by_id(task_id)
            except self.outage[lane]:  # harmless: the runner's claim refuses a cancelled job anyway
                log.warning("queue %s unreachable; revoke of %s skipped", lane, task_id)

    def pending_job_ids(self, lane: str) -> set[str]:
        huey = self.hueys[lane]
        ids = {t.args[0] for t in huey.pending() if t.args}
        ids |= {t.args[0] for t in huey.scheduled() if t.args}
        return ids

    def start(self) -> None:
        for lane, huey in self.hueys.items():
            if not self.workers[lane]:
                continue
            consumer = EmbeddedConsumer(huey, workers=self.workers[lane], worker_type="thread",
                                        periodic=False, initial_delay=0.05, max_delay=1.0,
                                        backoff=1.5, check_worker_health=False)
            consumer.start()
            self.consumers.append(consumer)

    def stop(self, timeout: float = 10.0) -> None:
        for consumer in self.consumers:
            consumer.stop_flag.set()
        for huey in self.hueys.values():
            if huey.waker:
                huey.waker.notify()
        for consumer in self.consumers:
            consumer.shutdown_timeout = timeout
            consumer.stop(graceful=True)
        self.consumers.clear()

    def close(self) -> None:
        for huey in self.hueys.values():
            huey.storage.close()


# --- the queue lanes ----------------------------------------------------------------------
def make_lane(settings, lane: str, *, queue_dir: Path | None = None, immediate: bool = False):
    """The Huey for ``lane`` (``gpu`` / ``io``): one SQLite file per lane, or a named queue
    on the team's Redis / Postgres."""
    name = f"xianying-{lane}"
    # team mode without a queue_url: the lanes live in the team's Postgres too
    url = (getattr(settings, "queue_url", None) or getattr(settings, "database_url", None)) if settings else None
    if not url:
        folder = queue_dir or settings.queue_dir
        folder.mkdir(parents=True, exist_ok=True)
        return LaneHuey(name, filename=str(folder / f"{lane}.db"), journal_mode=sqlite_journal_mode(folder),
                        timeout=10, immediate=immediate, results=False)
    scheme = scheme_of(url)
    if scheme in REDIS_SCHEMES:
        need_module("redis", "A Redis queue_url")
        from huey import RedisHuey

        return RedisHuey(name, url=url, immediate=immediate, results=False, blocking=True, read_timeout=1)
    if scheme in POSTGRES_SCHEMES:
        need_module("psycopg", "A Postgres queue_url")
        from huey import PostgresHuey

        return PostgresHuey(name, dsn=url, immediate=immediate, results=False, blocking=True, read_timeout=1)
    raise ConfigError(f"queue_url must start with redis:// or postgresql:// (got {redact(url)}).",
                      f"queue_url 应以 redis:// 或 postgresql:// 开头（当前：{redact(url)}）。")


def queue_outage_errors(huey) -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the queue server is unreachable right now" for this lane: the job
    row stays queued and the team monitor enqueues it again once the server is back. Empty for
    SQLite, whose errors keep propagating as before."""
    module = type(huey.storage).__module__
    name = type(huey.storage).__name__
    if module.startswith("huey") and name.startswith("Redis"):
        import redis

        return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    if name.startswith("Postgres"):
        import psycopg

        return (psycopg.OperationalError, psycopg.InterfaceError)
    return ()
