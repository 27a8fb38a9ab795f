"""The studio and two ``launch.py worker`` processes on one machine, over private Postgres and
Redis servers: a batch runs once across both workers; a paused worker loses its lease and its
late result is dropped; Redis restarting mid-batch loses nothing; a worker killed with -9
mid-job costs a re-run, never a double result."""

from __future__ import annotations

import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import install_weights, wait_for
from tests.team.conftest import WAN, team_config
from tests.team.proc import StudioProcess, WorkerProcess, create_admin_key, team_env

LEASE_S = 3.0
QUICK = {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 4}
SLOW = {"width": 32, "height": 32, "num_frames": 9, "num_inference_steps": 40}


@dataclass
class Team:
    studio: StudioProcess
    workers: list[WorkerProcess]
    client: object
    workspace: Path
    redis: object
    key: str

    def submit(self, params: dict, prompt: str = "team") -> str:
        return self.client.predict({"engine": WAN, "prompt": prompt, "params": params}, api_name="/submit")["task_id"]

    def row(self, job_id: str):
        from app.db import Job, connection

        with connection():
            return Job.get_by_id(job_id)

    def wait_done(self, ids, timeout: float = 150.0):
        wait_for(lambda: all(self.row(i).status in ("succeeded", "failed", "cancelled") for i in ids),
                 timeout=timeout, interval=0.2)
        return [self.row(i) for i in ids]

    def assert_once(self, rows) -> None:
        for row in rows:
            assert row.status == "succeeded", (row.id, row.status, row.error, row.message)
            dirs = list(self.workspace.glob(f"outputs/*/{row.id}"))
            assert len(dirs) == 1, dirs
            names = sorted(p.name for p in dirs[0].iterdir())
            assert "job.json" in names and "thumb.jpg" in names and any(n.endswith(".mp4") for n in names)
            assert (self.workspace / row.outputs[0]["file"]).stat().st_size > 0
            assert not list(self.workspace.glob(f"outputs/.incoming/{row.id}.*"))


@pytest.fixture(scope="module")
def team(servers, tmp_path_factory, tiny_wan_dir):
    from gradio_client import Client

    from app.db import open_db
    from app.settings import load_settings

    redis, pg = servers
    redis.flush()
    database_url = pg.create_database(f"xy_fleet_{uuid.uuid4().hex[:8]}")
    root = tmp_path_factory.mktemp("team")
    env = team_env(database_url, redis.url, XIANYING_SECRETS=str(root / "secrets.yaml"))
    studio_ws = root / "studio"
    studio_ws.mkdir()
    (studio_ws / "config.yaml").write_text(team_config(lease_s=LEASE_S), encoding="utf-8")
    key = create_admin_key(studio_ws, env)
    studio = StudioProcess(studio_ws, env=env).start()
    workers = []
    for name in ("w1", "w2"):
        ws = root / name
        ws.mkdir()
        install_weights(ws, WAN, tiny_wan_dir)
        (ws / "config.yaml").write_text(team_config(lease_s=LEASE_S), encoding="utf-8")
        workers.append(WorkerProcess(ws, env, studio.url, key))
    for w in workers:
        w.start()
    database = open_db(load_settings(studio_ws, database_url=database_url, queue_url=redis.url))
    client = Client(studio.url, download_files=str(root / "downloads"), verbose=False)
    # a worker prints its banner before its first heartbeat: wait until the studio offers the engine
    # through its workers, as a person would see on the Fleet tab (under load that took seconds)
    from app.team.fleet import snapshot

    owners = {w.owner for w in workers}
    wait_for(lambda: owners <= {r["id"] for r in snapshot(0.5) if r["state"] == "alive" and WAN in r["engines"]},
             timeout=90, interval=0.2)
    wait_for(lambda: any(e["id"] == WAN and e["available"] for e in client.predict(api_name="/engines")),
             timeout=30, interval=0.5)
    yield Team(studio, workers, client, studio_ws, redis, key)
    for w in workers:
        w.stop()
    assert studio.stop() == 0, studio.log()
    database.close_all()


def owner_of_running(team: Team, job_id: str, min_progress: float = 3.0):
    row = wait_for(lambda: (r := team.row(job_id)).status == "running" and r.progress >= min_progress and r,
                   timeout=90, interval=0.05)
    return next(w for w in team.workers if w.owner == row.lease_owner), row


def test_batch_runs_once_across_both_workers_and_the_fleet_shows(team):
    ids = [team.submit(QUICK, f"批次 {i}") for i in range(4)]
    rows = team.wait_done(ids)
    team.assert_once(rows)
    assert all(r.attempts == 1 and r.fence == 1 for r in rows), [
        (r.attempts, r.fence, r.info, r.message, r.created_at, r.started_at, r.finished_at) for r in rows]
    used = {r.info["worker"]["id"] for r in rows}
    assert used <= {w.owner for w in team.workers} and len(used) == 2, used
    metrics = httpx.get(team.studio.url + "/metrics", timeout=10).text
    alive = [line for line in metrics.splitlines()
             if line.startswith("xianying_workers{") and 'state="alive"' in line and 'role="worker"' in line]
    assert len(alive) == 2, metrics
    from app.team.fleet import snapshot

    fleet = {r["id"]: r for r in snapshot(0.5)}
    for w in team.workers:
        assert fleet[w.owner]["engines"] == [WAN] and fleet[w.owner]["warm"] == [WAN]


def test_uploads_need_an_admin_key(team):
    r = httpx.get(f"{team.studio.url}/api/v1/team/jobs/{'0' * 32}/uploads/1", timeout=10)
    assert r.status_code == 401
    r = httpx.get(f"{team.studio.url}/api/v1/team/jobs/{'0' * 32}/uploads/1", timeout=10,
                  headers={"Authorization": f"Bearer {team.key}"})
    assert r.status_code == 404 and team.key not in r.text


def test_a_paused_worker_loses_its_lease_and_its_late_result_is_dropped(team):
    job_id = team.submit(SLOW, "暂停的工作机")
    paused, _ = owner_of_running(team, job_id)
    other = next(w for w in team.workers if w is not paused)
    paused.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        wait_for(lambda: team.row(job_id).lease_owner != paused.owner, timeout=LEASE_S + 10, interval=0.05)
        requeue_s = time.monotonic() - stopped_at
        assert requeue_s < LEASE_S + 3, requeue_s  # lease + monitor interval + a heartbeat, with slack
        done = team.wait_done([job_id])[0]
    finally:
        paused.signal(signal.SIGCONT)
    assert done.info["worker"]["id"] == other.owner and done.attempts == 2
    assert done.info["lost_workers"] == [paused.owner]
    time.sleep(2.0)  # the paused run wakes up, sees its fence is stale, and drops its work
    again = team.row(job_id)
    assert again.status == "succeeded" and again.info["worker"]["id"] == other.owner
    assert again.fence == done.fence and again.finished_at == done.finished_at
    team.assert_once([again])
    assert paused.proc.poll() is None
    follow_up = team.wait_done([team.submit(QUICK, "之后")])
    team.assert_once(follow_up)


def test_redis_restart_mid_batch_loses_nothing(team):
    ids = [team.submit(QUICK, f"重启前 {i}") for i in range(3)]
    wait_for(lambda: any(team.row(i).status == "succeeded" for i in ids), timeout=90)
    team.redis.stop(signal.SIGKILL)
    try:
        ids += [team.submit(QUICK, f"重启中 {i}") for i in range(1)]  # accepted: the rows are the truth
    finally:
        time.sleep(1.0)
        team.redis.start()
    ids += [team.submit(QUICK, f"重启后 {i}") for i in range(1)]
    rows = team.wait_done(ids, timeout=180)
    team.assert_once(rows)
    assert all(w.proc.poll() is None for w in team.workers)


def test_kill9_a_worker_mid_job_every_job_finishes_once(team):
    ids = [team.submit(SLOW if i == 0 else QUICK, f"强杀 {i}") for i in range(3)]
    victim, _ = owner_of_running(team, ids[0])
    victim.kill9()
    rows = team.wait_done(ids, timeout=180)
    team.assert_once(rows)
    first = rows[0]
    assert first.attempts == 2 and first.info["lost_workers"] == [victim.owner]
