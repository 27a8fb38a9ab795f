"""The studio's lease monitor (team mode): puts lost work back on its way, within a bounded time.

Every ``team.monitor_interval_s`` it looks for

* local jobs ``running`` whose lease expired (their worker was killed, lost power or network):
  re-queued with the fencing token bumped, so the old run, should it come back, can neither
  publish nor fail the job; after ``queue.max_attempts`` runs the job fails as interrupted.
  Worst case from the last heartbeat to re-queued: ``lease_s + monitor_interval_s``;
* cloud jobs ``running`` with no word for longer than the longest poll interval plus a lease
  (the worker that held the poll task died): the poll is sent again (poll tokens make a
  duplicate harmless);
* jobs ``queued`` in the table but on no queue for two sweeps in a row (a queue server that
  restarted without its data, or was down when the job was enqueued): enqueued again.

Every update is conditional on the row as read, so two monitors (or a worker renewing at the
same moment) never double-act.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time

from app import jobstate
from app.db import Job, connection
from app.queue import RESUMED

log = logging.getLogger(__name__)

LOST_QUEUE_CHECK_S = 5.0
INCOMING_MAX_AGE_S = 6 * 3600


class LeaseMonitor:
    def __init__(self, studio):
        self.studio = studio
        self.settings = studio.settings
        self.service = studio.service
        self.interval = self.settings.team.monitor_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unqueued: set[str] = set()
        self._last_queue_check = 0.0
        self.requeued = 0
        self.failed = 0
        self.resent = 0

    # --- one pass ---------------------------------------------------------------------
    def sweep(self) -> dict:
        counts = {"requeued": 0, "failed": 0, "polls": 0, "resent": 0}
        now = time.time()
        with connection():
            self._expired_leases(now, counts)
            self._silent_cloud_jobs(now, counts)
            if now - self._last_queue_check >= LOST_QUEUE_CHECK_S:
                self._last_queue_check = now
                self._lost_from_queue(now, counts)
        self.requeued += counts["requeued"]
        self.failed += counts["failed"]
        self.resent += counts["resent"]
        return counts

    def _expired_leases(self, now: float, counts: dict) -> None:
        max_attempts = self.settings.queue.max_attempts
        query = Job.select().where(Job.status == "running", Job.kind == "local", Job.lease_expires < now)
        for job in query:
            owner = job.lease_owner or "?"
            lost = [*job.info.get("lost_workers", []), owner][-10:]
            outcome = jobstate.interrupted(
                job, max_attempts, why_en=f"its worker ({owner}) stopped answering",
                why_zh=f"执行它的工作机（{owner}）失去响应", requeue_message=f"re-queued: worker {owner} stopped answering",
                lease_expired_before=now, info={**job.info, "lost_workers": lost})
            if outcome == "requeued":
                log.warning("job %s: lease of %s expired; re-queued (attempt %s of %s done)", job.id, owner,
                            job.attempts, max_attempts)
                self.service.enqueue(job, priority=RESUMED)  # before the jobs submitted after it
                counts["requeued"] += 1
            elif outcome == "failed":
                counts["failed"] += 1

    def _silent_cloud_jobs(self, now: float, counts: dict) -> None:
        quiet = self.settings.queue.poll_max_interval_s + self.settings.team.lease_s
        query = Job.select().where(Job.status == "running", Job.kind == "cloud", Job.updated_at < now - quiet,
                                   Job.cancel_requested == False)
        for job in query:
            if jobstate.touch_if_unchanged(job.id, job.updated_at, now):
                self.service.enqueue(job, token=job.polls if job.remote_id else None)
                counts["polls"] += 1

    def _lost_from_queue(self, now: float, counts: dict) -> None:
        queue = self.service.queue
        try:
            pending = set().union(*(queue.pending_job_ids(lane) for lane in queue.hueys))
        except Exception as exc:  # the queue server is down: try again next time
            log.warning("cannot read the queue (%s); lost-job check skipped", type(exc).__name__)
            return
        queued = {j.id: j for j in Job.select().where(Job.status == "queued", Job.created_at < now - 2.0)}
        missing = {jid for jid in queued if jid not in pending}
        for jid in missing & self._unqueued:  # missing twice in a row: not a task in flight
            job = Job.get_or_none(Job.id == jid)
            if job is not None and job.status == "queued":
                self.service.enqueue(job, priority=RESUMED if job.started_at else None)
                counts["resent"] += 1
        self._unqueued = missing
        self._clean_incoming(now)

    def _clean_incoming(self, now: float) -> None:
        incoming = self.settings.outputs_dir / ".incoming"
        if not incoming.is_dir():
            return
        for child in incoming.iterdir():
            try:
                if now - child.stat().st_mtime > INCOMING_MAX_AGE_S:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            except OSError:
                continue

    # --- thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except Exception as exc:  # database restarting: the next sweep tries again
                log.warning("lease monitor sweep failed (%s: %s)", type(exc).__name__, exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="lease-monitor")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
