"""The running studio: settings, database, engines, job service, runner and queue, wired once.

``launch.py`` builds one ``Studio``; tests build as many isolated ones as they like.
"""

from __future__ import annotations

import logging

from engines.cloud import aio as cloud_aio

from .db import open_db
from .jobs import JobService
from .queue import JobQueue
from .runner import JobRunner
from .secrets import SecretStore
from .settings import Settings

log = logging.getLogger(__name__)


class Studio:
    def __init__(self, settings: Settings, *, engines: dict | None = None, immediate: bool = False):
        from engines.local.weights import PipelineCache
        from engines.registry import build_engines

        self.settings = settings
        settings.ensure_dirs()
        from profiles.samples import install_samples  # first start: the built-in xianxia sample project

        install_samples(settings.projects_dir)
        self.secrets = SecretStore(settings.secrets_file)
        self.cache = PipelineCache(int(settings.model_cache.max_size_gb * 2**30))
        self.database = open_db(settings)  # SQLite in the workspace, or the team's database_url (app.backends)
        self.engines = engines if engines is not None else build_engines(settings, self.secrets, self.cache)
        self.service = JobService(settings, self.engines)
        from engines.local.download import ModelDownloads  # Settings → Models: hub downloads (threads)

        self.downloads = ModelDownloads(settings, self.engines, self.secrets)
        self.runner = JobRunner(self.service)
        gpu_workers = settings.gpu_pool.max_concurrent if settings.gpu_pool.enabled else 1
        self.queue = JobQueue(settings.queue_dir, self.runner.execute, gpu_workers=gpu_workers,
                              io_workers=settings.queue.io_workers, immediate=immediate, settings=settings)
        self.service.queue = self.queue
        from .team import attach as attach_team  # team mode only (else None): fleet, lease monitor, routing

        self.team = attach_team(self)
        from .api import attach  # users, keys, quotas (service.admission), retention sweep

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
        self.queue.start()
        self.ops.start()
        self.started = True
        return counts

    def stop(self, timeout: float = 15.0) -> None:
        """Running local jobs stop at their next step and go back to queued; polls resume later."""
        if not self.started:
            return
        self.ops.stop()
        self.downloads.stop()  # parts stay on disk; the next Download resumes them
        self.runner.stopping.set()
        self.queue.stop(timeout=timeout)
        cloud_aio.release()  # the last studio out cancels polls in flight; reconcile re-sends them at its next start
        if self.team:
            self.team.stop()
        self.queue.close()
        self.started = False
        self.database.close()
