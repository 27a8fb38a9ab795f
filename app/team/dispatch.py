"""Routing in team mode: a claim step that lets a worker pass a job on.

Every worker of a lane reads the same Huey queue. Before claiming a queued job, a worker asks
``Router.gate(job)``:

* it cannot run the job's engine (no weights here, engine not installed, less free VRAM than
  ``team.min_free_vram_gb``) → decline: the task goes back on the queue with a short delay and
  the row says what it waits for, so another worker takes it;
* it can, but does not have the pipeline warm while a live peer has it warm and a free slot,
  and the job is younger than ``team.warm_wait_s`` → defer: after a short pause the task goes
  straight back on the queue, where an idle warm peer (blocked on it) gets it first; after that
  wait anyone takes it (a bounded detour);
* otherwise → claim (the runner's conditional UPDATE; duplicates of a bounced task are harmless).
"""

from __future__ import annotations

import logging
import time

from app import jobstate
from app.db import Job

from .fleet import FleetMember, live_peers, vram_info, warm_engines

log = logging.getLogger(__name__)

DECLINE_DELAY_S = 1.0  # through the lane's schedule (checked about once a second)
DEFER_PAUSE_S = 0.2  # then straight back on the queue: an idle warm peer blocked on it gets it first
GiB = 2**30


class Router:
    def __init__(self, runner, member: FleetMember):
        self.runner = runner
        self.member = member
        self.settings = runner.settings
        self.declined = 0
        self.deferred = 0

    def verdict(self, job: Job) -> tuple[str, str]:
        """``("run", "")``, ``("decline", why)`` or ``("defer", why)`` for a queued job."""
        engine = self.runner.service.engines.get(job.engine)
        me = self.member
        if engine is None or engine.lane not in me.lanes or job.engine not in me.runnable():
            return "decline", f"waiting for a worker that can run {job.engine}"
        if engine.kind != "local":
            return "run", ""
        warm_here = job.engine in warm_engines(me.cache)
        team = self.settings.team
        if team.min_free_vram_gb and not warm_here:
            vram = vram_info()
            if vram and max(g["free"] for g in vram) < team.min_free_vram_gb * GiB:
                return "decline", f"waiting for a worker with {team.min_free_vram_gb:g} GB free VRAM"
        if warm_here or not team.warm_wait_s or time.time() - job.created_at > team.warm_wait_s:
            return "run", ""
        for peer in live_peers(team.heartbeat_s, exclude=me.id):
            if job.engine in (peer.warm or []) and len(peer.running or []) < peer.slots and "gpu" in peer.lanes:
                return "defer", f"left to {peer.host} (pipeline warm there)"
        return "run", ""

    def gate(self, job: Job) -> bool:
        if job.status != "queued":
            return True
        verdict, why = self.verdict(job)
        if verdict == "run":
            return True
        if verdict == "decline":
            self.declined += 1
            jobstate.note_queued(job.id, why)
            self.runner.service.enqueue(job, delay=DECLINE_DELAY_S)
        else:
            self.deferred += 1
            time.sleep(DEFER_PAUSE_S)
            self.runner.service.enqueue(job)
        log.debug("job %s %sd: %s", job.id, verdict, why)
        return False
