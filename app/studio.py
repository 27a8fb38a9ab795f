"""The composition root: the one place the studio's parts are built and wired.

    build_core(settings, ...)   secrets, model cache, database, engines, job service, runner, queue
                                (shared by the studio and ``launch.py worker``)
    Studio(settings, ...)       the core + samples, downloads, users and quotas, team mode, REST ops

Every part gets what it needs through its constructor; nothing is wired later by setting an
attribute from outside. ``launch.py`` builds one ``Studio``; tests build as many isolated ones as
they like (``engines=`` injects tiny engines).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from engines.cloud import aio as cloud_aio

from .backends import is_team
from .db import keep_connection, open_db
from .jobs import JobService
from .queue import JobQueue
from .runner import JobRunner
from .secrets import SecretStore
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    secrets: SecretStore
    cache: object
    database: object
    engines: dict
    service: JobService
    runner: JobRunner
    queue: JobQueue


def lane_workers(settings: Settings, lanes=("gpu", "io")) -> dict[str, int]:
    """Workers per lane for this process: the gpu pool and the io workers, for the lanes it serves."""
    gpu = settings.gpu_pool.max_concurrent if settings.gpu_pool.enabled else 1
    return {"gpu": gpu if "gpu" in lanes else 0, "io": settings.queue.io_workers if "io" in lanes else 0}


def build_core(settings: Settings, *, engines: dict | None = None, lanes=("gpu", "io"), immediate: bool = False,
               runner_factory=JobRunner, admission_factory=None, isolate: bool = True) -> Core:
    """The parts every process that runs jobs has. ``runner_factory(service)`` makes the runner (a
    team worker's delivers remotely); ``admission_factory(engines)`` the quota check run inside
    each submit (the studio's; a worker submits nothing); ``isolate``: gpu-lane local jobs in a
    worker process (``gpu_pool.isolation``; a team worker delivers from its own process instead)."""
    from engines.local.weights import PipelineCache
    from engines.registry import build_engines

    settings.ensure_dirs()
    secrets = SecretStore(settings.secrets_file)
    cache = PipelineCache(int(settings.model_cache.max_size_gb * 2**30))
    database = open_db(settings)  # SQLite in the workspace, or the team's database_url (app.backends)
    engines_injected = engines is not None
    engines = engines if engines_injected else build_engines(settings, secrets, cache)
    runner = None  # the queue calls the runner, which needs the service, which enqueues on the queue
    workers = lane_workers(settings, lanes)
    queue = JobQueue(settings.queue_dir, lambda *args: runner.execute(*args), gpu_workers=workers["gpu"],
                     io_workers=workers["io"], immediate=immediate, settings=settings, worker_setup=keep_connection)
    admission = admission_factory(engines) if admission_factory is not None else None
    service = JobService(settings, engines, queue=queue, admission=admission)
    runner = runner_factory(service)
    if isolate and not engines_injected and settings.gpu_pool.isolation == "process":
        from .isolation import ProcessIsolation  # injected engines (tests) cannot cross a process

        runner.isolation = ProcessIsolation(runner)  # gpu-lane local jobs in a process a cancel can end
    from . import cloud_host

    if isolate and cloud_host.wanted(settings, injected=engines_injected):
        runner.host = cloud_host.CloudHost(runner)  # cloud chains in a process of their own
        service.handoff = runner.hand_new  # which takes new cloud jobs without a trip through the queue
    return Core(settings, secrets, cache, database, engines, service, runner, queue)


class Studio:
    def __init__(self, settings: Settings, *, engines: dict | None = None, immediate: bool = False):
        from profiles.samples import install_samples  # first start: the built-in xianxia sample project

        from .api.quotas import Admission, UserDirectory

        self.settings = settings
        settings.ensure_dirs()
        install_samples(settings.projects_dir)
        self.users = UserDirectory(settings.workspace / "users")
        lanes = settings.team.studio_lanes if is_team(settings) else ("gpu", "io")  # team: the rest is the workers'
        core = build_core(settings, engines=engines, lanes=lanes, immediate=immediate,
                          admission_factory=lambda built: Admission(self.users, built))
        self.secrets, self.cache, self.database = core.secrets, core.cache, core.database
        self.engines, self.service, self.runner, self.queue = core.engines, core.service, core.runner, core.queue
        self.admission = self.service.admission
        from engines.local.download import ModelDownloads  # Settings → Models: hub downloads (threads)

        self.downloads = ModelDownloads(settings, self.engines, self.secrets)
        from .team import attach as attach_team  # team mode only (else None): fleet, lease monitor, routing

        self.team = attach_team(self)
        from .api import attach  # API keys, rate limits, retention sweep

        self.ops = attach(self)
        self.started = False

    def start(self) -> dict:
        """Reconcile unfinished jobs, then start the embedded consumers."""
        counts = self.runner.reconcile()
        if any(counts.values()):
            log.info("startup reconcile: %s", counts)
        if self.team:
            self.team.start()
        cloud_aio.retain()  # cloud polls run on one event loop (engines/cloud/aio.py)
        if self.runner.host is not None:
            self.runner.host.start()  # ...in a process of their own (app/cloud_host.py)
        self.queue.start()
        self.ops.start()
        self.started = True
        return counts

    def stop(self, timeout: float = 15.0) -> None:
        """Running local jobs stop at their next step and go back to queued, first in line; polls
        resume later. With process isolation a step that does not end within
        ``gpu_pool.kill_after_s`` has its worker process killed."""
        if not self.started:
            return
        self.ops.stop()
        self.downloads.stop()  # parts stay on disk; the next Download resumes them
        self.runner.stopping.set()
        self.queue.stop(timeout=timeout)
        if self.runner.isolation is not None:
            self.runner.isolation.close()
        if self.runner.host is not None:
            self.runner.host.close()  # its chains stop where they stand; the next start resumes them
        cloud_aio.release()  # the last studio out cancels polls in flight; reconcile re-sends them at its next start
        if self.team:
            self.team.stop()
        self.queue.close()
        self.started = False
        self.database.close()

