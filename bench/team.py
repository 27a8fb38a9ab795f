"""Team-mode benchmark (issue 8): the studio plus 1, 2 and 4 ``launch.py worker`` processes on
private Redis + Postgres servers (tests/team/servers.py), tiny random-weight Wan jobs.

1. Throughput: ``--jobs`` tiny jobs submitted at once to a warm fleet; jobs per second from the
   first submit to the last result published in the studio, and the ratio to one worker.
2. Dispatch latency: one job at a time to an idle fleet; the row's ``started_at - created_at``
   (submit → claimed by a worker), median and p90.
3. Re-queue time: a worker killed with -9 mid-job; seconds from the kill until another worker
   holds the job, and until it succeeded (bounded by ``lease_s + monitor_interval_s``).

    python bench/team.py [--jobs 16] [--workers 1,2,4] [--lease 5]

Needs redis-server and postgresql (Debian packages) and the team extra. On a machine with
fewer cores than workers the workers share the CPU: read the scaling ratio with the core count.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.conftest import install_weights
from tests.team.conftest import team_config
from tests.team.proc import StudioProcess, WorkerProcess, create_admin_key, team_env
from tests.team.servers import PostgresServer, RedisServer, make_root, missing_servers
from app.access import LOCAL, Principal  # noqa: F401

WAN = "wan2.1-t2v-1.3b"
TINY = {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}
SLOW = {"width": 32, "height": 32, "num_frames": 9, "num_inference_steps": 60}


class Fleet:
    def __init__(self, root: Path, weights: Path, redis: RedisServer, pg: PostgresServer, n: int, lease_s: float):
        from app.db import open_db
        from app.jobs import JobService
        from app.queue import JobQueue
        from app.settings import load_settings
        from engines.registry import build_engines

        redis.flush()
        self.database_url = pg.create_database(f"xy_bench_{uuid.uuid4().hex[:8]}")
        env = team_env(self.database_url, redis.url, XIANYING_SECRETS=str(root / "secrets.yaml"))
        config = team_config(lease_s=lease_s, heartbeat_s=1.0, monitor_interval_s=0.5)
        studio_ws = root / f"studio{n}"
        studio_ws.mkdir()
        (studio_ws / "config.yaml").write_text(config, encoding="utf-8")
        key = create_admin_key(studio_ws, env)
        self.studio = StudioProcess(studio_ws, env=env).start()
        self.workers = []
        for i in range(n):
            ws = root / f"fleet{n}-w{i}"
            ws.mkdir()
            install_weights(ws, WAN, weights)
            (ws / "config.yaml").write_text(config, encoding="utf-8")
            self.workers.append(WorkerProcess(ws, env, self.studio.url, key).start())
        # the bench submits through the job service itself (as the studio's handlers do)
        client_ws = root / f"client{n}"
        client_ws.mkdir()
        install_weights(client_ws, WAN, weights)
        settings = load_settings(client_ws, database_url=self.database_url, queue_url=redis.url)
        self.database = open_db(settings)
        self.queue = JobQueue(settings.queue_dir, lambda *a: None, gpu_workers=0, io_workers=0, settings=settings)
        self.service = JobService(settings, build_engines(settings))
        self.service.queue = self.queue

    def submit(self, params=TINY) -> str:
        from app.db import connection

        with connection():
            return self.service.submit({"engine": WAN, "prompt": "bench", "params": params}, LOCAL).id

    def rows(self, ids):
        from app.db import Job, connection

        with connection():
            return [Job.get_by_id(i) for i in ids]

    def wait(self, ids, timeout=600.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows(ids)
            if all(r.status in ("succeeded", "failed", "cancelled") for r in rows):
                bad = [r for r in rows if r.status != "succeeded"]
                if bad:
                    raise RuntimeError(f"{len(bad)} jobs did not succeed: {bad[0].error}")
                return rows
            time.sleep(0.05)
        raise RuntimeError("timed out")

    def close(self):
        for w in self.workers:
            w.stop()
        self.studio.stop()
        self.queue.close()
        self.database.close_all()


def throughput(fleet: Fleet, jobs: int) -> float:
    fleet.wait([fleet.submit() for _ in range(len(fleet.workers) * 3)])  # warm every worker
    start = time.time()
    rows = fleet.wait([fleet.submit() for _ in range(jobs)])
    end = max(r.updated_at for r in rows)
    return jobs / (end - start)


def dispatch(fleet: Fleet, n: int = 8) -> list[float]:
    out = []
    for _ in range(n):
        time.sleep(1.5)  # idle: workers are blocked on the queue
        row = fleet.wait([fleet.submit()])[0]
        out.append(row.started_at - row.created_at)
    return out


def requeue(fleet: Fleet) -> tuple[float, float]:
    job = fleet.submit(SLOW)
    while True:
        row = fleet.rows([job])[0]
        if row.status == "running" and row.progress > 3:
            break
        time.sleep(0.02)
    victim = next(w for w in fleet.workers if w.owner == row.lease_owner)
    victim.kill9()
    killed = time.time()
    while fleet.rows([job])[0].lease_owner in (victim.owner,):
        time.sleep(0.02)
    taken = time.time() - killed
    done = fleet.wait([job])[0]
    return taken, done.updated_at - killed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--lease", type=float, default=5.0)
    args = parser.parse_args()
    why = missing_servers()
    if why:
        print(why, file=sys.stderr)
        return 2
    from tests.tiny_models import build_tiny_wan_t2v

    root = make_root("xy-bench-team-")
    weights = build_tiny_wan_t2v(root / "weights" / WAN)
    redis = RedisServer(root / "redis").start()
    pg = PostgresServer(root / "pg").start()
    results = []
    try:
        for n in [int(x) for x in args.workers.split(",")]:
            fleet = Fleet(root, weights, redis, pg, n, args.lease)
            try:
                rate = throughput(fleet, args.jobs)
                lat = dispatch(fleet)
                rq = requeue(fleet) if n > 1 else (float("nan"), float("nan"))
            finally:
                fleet.close()
            results.append((n, rate, lat, rq))
            print(f"  {n} worker(s): {rate:.2f} jobs/s", flush=True)
    finally:
        redis.stop()
        pg.stop("immediate")
    base = results[0][1]
    print(f"\nTeam mode, tiny Wan jobs ({TINY}), {os.cpu_count()} CPU cores, lease {args.lease:g} s, "
          f"monitor 0.5 s, {args.jobs} jobs per throughput run\n")
    print(f"{'workers':>7} {'jobs/s':>7} {'scaling':>8} {'dispatch p50':>13} {'p90':>7} {'requeue':>8} {'re-run done':>12}")
    for n, rate, lat, (taken, done) in results:
        lat = sorted(lat)
        p90 = lat[min(len(lat) - 1, int(0.9 * len(lat)))]
        rq = f"{taken:>7.2f}s {done:>11.2f}s" if not math.isnan(taken) else f"{'—':>8} {'—':>12}"  # 1 worker: no peer
        print(f"{n:>7} {rate:>7.2f} {rate / base:>7.2f}x {statistics.median(lat) * 1000:>10.0f} ms "
              f"{p90 * 1000:>4.0f} ms {rq}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
