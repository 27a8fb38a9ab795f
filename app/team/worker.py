"""``launch.py worker``: a team worker — queue consumers and the job runner, no UI.

It points at the team's database and queue, runs the lanes it was given (``gpu`` and/or
``io``), advertises itself and renews its leases (``fleet.FleetMember``), routes through
``dispatch.Router``, and delivers each finished run either by uploading it to the studio
(``uploader.StudioUploader``) or, with ``team.shared_outputs``, by renaming it into the shared
``outputs/`` (its workspace is then the studio's, mounted). A run that lost its lease — the
studio re-queued the job while this worker was paused or cut off — notices at its next step
(or at delivery) and drops its result: the job's files come from exactly one run.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time

from app.db import Job, connection
from app.queue import RESUMED
from app.runner import JobRunner

log = logging.getLogger(__name__)

STALE_STAGING_S = 3600.0


class WorkerRunner(JobRunner):
    """The studio's runner, plus: remembers the fence of each job it claimed, stops a run whose
    lease was taken over, fetches input images from the studio, and delivers results remotely."""

    def __init__(self, service, uploader=None):
        super().__init__(service)
        self.uploader = uploader
        self.held: dict[str, int] = {}
        self.delivered = 0
        self.dropped = 0

    def claim(self, job: Job) -> bool:
        if not super().claim(job):
            return False
        self.held[job.id] = Job.select(Job.fence).where(Job.id == job.id).scalar()
        return True

    def execute(self, job_id: str, token: int | None = None) -> None:
        try:
            super().execute(job_id, token)
        finally:
            self.held.pop(job_id, None)

    def workdir(self, job_id: str):
        if self.uploader is None:  # shared outputs: stage beside them, so publishing is a rename
            return self.settings.outputs_dir / ".incoming" / self.owner.replace(":", "_") / job_id
        return self.settings.staging_dir / f"w-{self.owner.replace(':', '_')}" / job_id

    def cancelled_fn(self, job_id: str):
        def cancelled() -> bool:
            if self.stopping.is_set():
                return True
            row = (Job.select(Job.cancel_requested, Job.fence, Job.status).where(Job.id == job_id).first())
            if row is None or row.cancel_requested:
                return True
            fence = self.held.get(job_id)
            if fence is not None and (row.fence != fence or row.status != "running"):
                log.warning("job %s: lease lost (taken over by another run); stopping this one", job_id)
                return True
            return False

        return cancelled

    def request_for(self, job: Job):
        if self.uploader is not None:
            ws = self.settings.workspace.resolve()
            for index, image in enumerate(job.images or []):
                if image.get("path"):
                    dest = (ws / image["path"]).resolve()
                    if dest.is_relative_to(ws) and not dest.exists():
                        self.uploader.fetch_input(job.id, index, dest)
        return super().request_for(job)

    def requeue(self, job: Job, why: str) -> None:
        super().requeue(job, why)  # this worker is stopping: hand the job to another one now
        with connection():
            row = Job.get_or_none(Job.id == job.id)
            if row is not None and row.status == "queued":
                self.service.enqueue(row, priority=RESUMED)  # ahead of jobs submitted after it

    def publish(self, job: Job, fence: int, work, final, fields: dict) -> bool:
        fields = {**fields, "info": {**fields.get("info", {}), "worker": {"id": self.owner,
                                                                         "host": socket.gethostname()}}}
        if self.uploader is None:
            ok = super().publish(job, fence, work, final, fields)
        else:
            ok = self.uploader.deliver(job.id, fence, work, fields)
        if ok:
            self.delivered += 1
        else:
            self.dropped += 1
        return ok


class WorkerProcess:
    """Everything a worker runs, built from settings; ``start()``/``stop()``."""

    def __init__(self, settings, *, lanes=("gpu",), gpus=(), api_key: str | None = None, uploader=None):
        from app.backends import is_team
        from core.errors import ConfigError

        from .dispatch import Router
        from .fleet import FleetMember
        from .uploader import StudioUploader

        if not is_team(settings):
            raise ConfigError("A worker needs the team's database: --database-url postgresql://... "
                              "(or XIANYING_DATABASE_URL).",
                              "工作机需要团队数据库：--database-url postgresql://...（或 XIANYING_DATABASE_URL）。")
        team = settings.team
        if uploader is None and not team.shared_outputs:
            if not team.studio_url:
                raise ConfigError("A worker needs --studio-url (to upload results) or --shared-outputs.",
                                  "工作机需要 --studio-url（上传结果）或 --shared-outputs。")
            uploader = StudioUploader(team.studio_url, api_key)
        self.settings = settings
        from app.studio import build_core  # the same construction as the studio's (the composition root)

        core = build_core(settings, lanes=lanes, runner_factory=lambda service: WorkerRunner(service, uploader),
                          isolate=False)
        self.secrets, self.cache, self.database = core.secrets, core.cache, core.database
        self.engines, self.service, self.runner, self.queue = core.engines, core.service, core.runner, core.queue
        slots = self.queue.workers["gpu"]
        self.member = FleetMember(settings, self.runner, self.engines, self.cache, role="worker", lanes=lanes,
                                  gpus=gpus, slots=max(slots, 1), outputs="shared" if uploader is None else "upload")
        self.router = Router(self.runner, self.member)
        self.runner.gate = self.router.gate
        self.stopped = threading.Event()

    def start(self) -> None:
        for child in self.settings.staging_dir.glob("w-*"):  # left by killed workers of this workspace
            try:
                if time.time() - child.stat().st_mtime > STALE_STAGING_S:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                continue
        self.member.start()
        self.queue.start()
        log.info("worker %s up: lanes %s, engines %s", self.member.id, self.member.lanes, self.member.runnable())

    def stop(self, timeout: float = 30.0) -> None:
        """Running local jobs stop at their next step and go back to the queue for another worker."""
        self.runner.stopping.set()
        self.queue.stop(timeout=timeout)
        self.member.stop()
        self.queue.close()
        if self.runner.uploader is not None:
            self.runner.uploader.close()
        getattr(self.database, "close_all", self.database.close)()
        self.stopped.set()
