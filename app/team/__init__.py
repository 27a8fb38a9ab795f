"""Team mode: one studio, workers on other machines, over a shared Postgres (job tables) and
Redis or Postgres (queue lanes). See docs/team.md.

    attach(studio) -> TeamRuntime | None   Studio.__init__: None in embedded mode
    fleet.py       the ``workers`` table, the heartbeat that renews leases and advertises a process
    dispatch.py    routing: a claim step that declines jobs a worker cannot run, defers to warm peers
    monitor.py     the studio's lease monitor: re-queues jobs of lost workers, re-sends lost tasks
    worker.py      ``launch.py worker``: queue consumers only, results uploaded or written to a share
    uploader.py    the worker's side of the upload protocol; app/api/uploads.py is the studio's
    incoming.py    the studio's store of uploads in progress and the fenced commit
    migrate.py     ``launch.py migrate --to-team``: SQLite workspace → Postgres
"""

from __future__ import annotations

from app.backends import is_team


class TeamRuntime:
    """The studio's part in the fleet: its own row and heartbeat, the router for whatever lanes
    it serves itself (``team.studio_lanes``), and the lease monitor."""

    def __init__(self, studio):
        from .dispatch import Router
        from .fleet import FleetAvailability, FleetMember
        from .monitor import LeaseMonitor

        settings = studio.settings
        lanes = [lane for lane in settings.team.studio_lanes if studio.queue.workers.get(lane)]  # (app/studio.py)
        self.member = FleetMember(settings, studio.runner, studio.engines, studio.cache, role="studio",
                                  lanes=lanes, slots=studio.queue.workers.get("gpu", 0) or 1, outputs="local")
        self.router = Router(studio.runner, self.member)
        studio.runner.gate = self.router.gate
        self.monitor = LeaseMonitor(studio)
        offers: dict = {}
        for engine in studio.engines.values():  # engines the workers have count as available here
            engine.available = FleetAvailability(engine, settings.team.heartbeat_s, offers)

    def start(self) -> None:
        self.member.start()
        self.monitor.start()

    def stop(self) -> None:
        self.monitor.stop()
        self.member.stop()


def attach(studio) -> TeamRuntime | None:
    return TeamRuntime(studio) if is_team(studio.settings) else None
