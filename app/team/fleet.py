"""The fleet: every team process (the studio and each ``launch.py worker``) advertises itself in
the ``workers`` table and renews the leases of the jobs it runs (two heartbeat threads: leases
never wait behind a pipeline that is loading).

A row says who it is (host, pid, role, lanes, GPUs), what it can do (engines whose
``available()`` is true here, free VRAM when torch and CUDA are already loaded), what it has warm
(pipelines in its ``PipelineCache``) and what it runs now; ``heartbeat_at`` tells the living
from the lost. The studio's Settings tab and ``/metrics`` read these rows.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time

from peewee import CharField, FloatField, IntegerField, JSONField

from app import jobstate
from app.db import BaseModel, connection

log = logging.getLogger(__name__)


class Worker(BaseModel):
    id = CharField(primary_key=True, max_length=96)  # the process's lease owner id
    role = CharField(default="worker")  # studio | worker
    host = CharField()
    pid = IntegerField()
    lanes = JSONField(default=list)
    gpus = JSONField(default=list)  # the GPU ids it was started with ([] = CPU or all visible)
    vram = JSONField(default=list)  # [{device, free, total}] bytes; [] until torch + CUDA are loaded
    engines = JSONField(default=list)  # engine ids it can run now
    warm = JSONField(default=list)  # engine ids with a pipeline loaded
    running = JSONField(default=list)  # job ids it holds a lease on
    slots = IntegerField(default=1)  # local jobs it runs at once
    outputs = CharField(default="upload")  # upload | shared | local (the studio)
    started_at = FloatField(default=time.time)
    heartbeat_at = FloatField(default=time.time, index=True)
    stopped_at = FloatField(null=True)

    class Meta:
        table_name = "workers"


TABLES = (Worker,)


def state_of(row: Worker, heartbeat_s: float, now: float | None = None) -> str:
    """``alive``, ``lost`` (no heartbeat for 3 periods) or ``stopped`` (said goodbye)."""
    if row.stopped_at:
        return "stopped"
    now = now or time.time()
    return "alive" if now - row.heartbeat_at <= max(3 * heartbeat_s, 2.0) else "lost"


def vram_info() -> list[dict]:
    """Free/total bytes per visible GPU, only when this process already has torch with CUDA up
    (never imports torch: a worker that has run no local job yet reports nothing)."""
    torch, cuda = sys.modules.get("torch"), sys.modules.get("torch.cuda")
    if torch is None or cuda is None or any(getattr(getattr(m, "__spec__", None), "_initializing", False)
                                            for m in (torch, cuda)):
        return []  # not loaded, or being imported by a job right now (touching it would wait for that)
    try:
        if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append({"device": i, "free": int(free), "total": int(total)})
        return out
    except (RuntimeError, AttributeError):
        return []


def warm_engines(cache) -> list[str]:
    """Engine ids with a pipeline in the cache (its keys start with the engine id)."""
    if cache is None:
        return []
    ids = []
    for key in cache.keys():
        engine_id = key[0] if isinstance(key, tuple) and key else key
        if isinstance(engine_id, str) and engine_id not in ids:
            ids.append(engine_id)
    return ids


def runnable_engines(engines: dict, lanes) -> list[str]:
    """Engines this process can run itself (never the fleet-wide answer of ``FleetAvailability``)."""
    return sorted(e.id for e in engines.values()
                  if e.lane in lanes and getattr(e.available, "local", e.available)()[0])


class FleetAvailability:
    """Replaces ``engine.available`` on the studio in team mode: an engine the studio cannot run
    itself is available when a live worker advertises it (the job service then accepts jobs for
    it, and the UI lists it). ``.local`` is the engine's own check."""

    CACHE_S = 2.0

    def __init__(self, engine, heartbeat_s: float, cache: dict):
        self.engine = engine
        self.local = engine.available
        self.heartbeat_s = heartbeat_s
        self.cache = cache  # shared by all engines of the studio: one query per CACHE_S

    def hosts(self) -> list[str]:
        at, offers = self.cache.get("offers", (0.0, {}))
        if time.monotonic() - at > self.CACHE_S:
            offers = {}
            with connection() as database:
                if database.table_exists(Worker._meta.table_name):
                    # generous window: a worker busy loading a model may beat late; its jobs just wait
                    for row in live_peers(self.heartbeat_s, window_s=max(6 * self.heartbeat_s, 30.0)):
                        for engine_id in row.engines or []:
                            offers.setdefault(engine_id, []).append(row.host)
            self.cache["offers"] = (time.monotonic(), offers)
        return sorted(set(offers.get(self.engine.id, [])))

    def __call__(self) -> tuple[bool, str]:
        ok, reason = self.local()
        if ok:
            return ok, reason
        from engines.base import Reason, reason_text

        hosts = self.hosts()
        if hosts:
            return True, Reason(f"on team worker(s): {', '.join(hosts)}", f"由团队工作机运行：{', '.join(hosts)}")
        return False, Reason(f"{reason} No live team worker offers it either.",
                             f"{reason_text(reason, 'zh')} 也没有在线的团队工作机提供它。")


def live_peers(heartbeat_s: float, exclude: str | None = None, window_s: float | None = None) -> list[Worker]:
    now = time.time()
    window = window_s if window_s is not None else max(3 * heartbeat_s, 2.0)
    rows = Worker.select().where(Worker.stopped_at.is_null(), Worker.heartbeat_at > now - window)
    return [r for r in rows if r.id != exclude]


class FleetMember:
    """This process in the fleet: a heartbeat thread that renews its leases and its row."""

    ENGINES_EVERY_S = 15.0  # availability checks touch the disk: not at every beat

    def __init__(self, settings, runner, engines: dict, cache=None, *, role: str, lanes, gpus=(),
                 slots: int = 1, outputs: str = "upload"):
        self.settings = settings
        self.runner = runner
        self.engines = engines
        self.cache = cache
        self.role = role
        self.lanes = list(lanes)
        self.gpus = list(gpus)
        self.slots = slots
        self.outputs = outputs
        self.id = runner.owner
        self.interval = settings.team.heartbeat_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._engines: tuple[float, list[str]] = (0.0, [])
        self.beats = 0

    def runnable(self) -> list[str]:
        at, ids = self._engines
        if time.monotonic() - at > self.ENGINES_EVERY_S or not at:
            ids = runnable_engines(self.engines, self.lanes)
            self._engines = (time.monotonic(), ids)
        return ids

    def refresh_engines(self) -> None:
        self._engines = (0.0, [])

    def identity(self) -> dict:
        return {"role": self.role, "host": socket.gethostname(), "pid": os.getpid(), "lanes": self.lanes,
                "gpus": self.gpus, "slots": self.slots, "outputs": self.outputs}

    def renew(self) -> list[str]:
        """Renew the leases of the runs in hand and the row's heartbeat; returns their job ids.
        Touches nothing but the database (no app locks): it must keep time while a job loads."""
        now = time.time()
        held = getattr(self.runner, "held", None)  # a worker's runner knows the runs it has in hand
        with connection():
            # an abandoned run (an error escaped it) is not in ``held``: it is not renewed, it expires
            running = jobstate.renew_leases(self.id, held, now + self.runner.lease_s)
            n = Worker.update(heartbeat_at=now, running=running, stopped_at=None).where(Worker.id == self.id).execute()
            if not n:
                Worker.insert(id=self.id, started_at=now, heartbeat_at=now, running=running,
                              **self.identity()).on_conflict_ignore().execute()
        self.beats += 1
        return running

    def advertise(self) -> None:
        """What this process can do and has warm. May wait (the pipeline cache is locked while a
        pipeline loads), so it runs on its own thread, apart from the lease renewals."""
        fields = {**self.identity(), "vram": vram_info(), "engines": self.runnable(),
                  "warm": warm_engines(self.cache)}
        with connection():
            Worker.update(**fields).where(Worker.id == self.id).execute()

    def beat(self) -> list[str]:
        running = self.renew()
        self.advertise()
        return running

    def _loop(self, step) -> None:
        while not self._stop.wait(self.interval):
            try:
                step()
            except Exception as exc:  # database restarting: keep beating, the lease outlives a few misses
                log.warning("heartbeat failed (%s: %s); retrying", type(exc).__name__, exc)

    def start(self) -> None:
        with connection() as database:
            database.create_tables(TABLES, safe=True)
        self.beat()
        self._threads = [threading.Thread(target=self._loop, args=(step,), daemon=True, name=f"fleet-{step.__name__}")
                         for step in (self.renew, self.advertise)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        try:
            with connection():
                Worker.update(stopped_at=time.time(), running=[]).where(Worker.id == self.id).execute()
        except Exception as exc:  # the database is gone: the row simply ages into "lost"
            log.warning("could not mark %s stopped: %s", self.id, type(exc).__name__)


def snapshot(heartbeat_s: float, include_stopped_s: float = 3600.0) -> list[dict]:
    """The fleet for screens and metrics: live and lost rows, and those stopped in the last hour."""
    now = time.time()
    with connection() as database:
        if not database.table_exists(Worker._meta.table_name):
            return []
        rows = list(Worker.select().where(Worker.heartbeat_at > now - 86400).order_by(Worker.role, Worker.host,
                                                                                       Worker.started_at))
    out = []
    for r in rows:
        state = state_of(r, heartbeat_s, now)
        if state == "stopped" and now - (r.stopped_at or 0) > include_stopped_s:
            continue
        out.append({"id": r.id, "role": r.role, "host": r.host, "pid": r.pid, "lanes": r.lanes, "gpus": r.gpus,
                    "vram": r.vram, "engines": r.engines, "warm": r.warm, "running": r.running, "slots": r.slots,
                    "outputs": r.outputs, "state": state, "heartbeat_age_s": round(now - r.heartbeat_at, 1),
                    "started_at": r.started_at})
    return out


def fleet_metrics(settings):
    """Prometheus gauges for ``app.api.metrics``: nothing in embedded mode."""
    from prometheus_client.core import GaugeMetricFamily

    if not getattr(settings, "database_url", None):
        return
    rows = snapshot(settings.team.heartbeat_s)
    workers = GaugeMetricFamily("xianying_workers", "Team processes by state", labels=["worker", "host", "role",
                                                                                    "state"])
    running = GaugeMetricFamily("xianying_worker_running_jobs", "Jobs a team process holds", labels=["worker"])
    vram = GaugeMetricFamily("xianying_worker_free_vram_bytes", "Free VRAM a worker reports",
                             labels=["worker", "device"])
    beat = GaugeMetricFamily("xianying_worker_heartbeat_age_seconds", "Seconds since a worker's last heartbeat",
                             labels=["worker"])
    for r in rows:
        workers.add_metric([r["id"], r["host"], r["role"], r["state"]], 1)
        running.add_metric([r["id"]], len(r["running"]))
        beat.add_metric([r["id"]], r["heartbeat_age_s"])
        for g in r["vram"]:
            vram.add_metric([r["id"], str(g.get("device"))], g.get("free", 0))
    yield from (workers, running, vram, beat)
