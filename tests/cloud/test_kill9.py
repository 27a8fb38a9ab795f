"""Crash drill through a real process: kill -9 the studio while a cloud job is polling, restart it
on the same workspace; the job finishes and the vendor saw exactly one create.

The vendor fake runs in this test process; the studio (``launch.py``) reaches it through the
base-URL variables, with the key in its environment, and is driven through gradio_client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from gradio_client import Client

from tests.cloud.fake_dashscope import FakeDashScope
from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY, SUB_APP_ID, FakeTencent
from tests.e2e.conftest import wait_status
from tests.e2e.proc import StudioProcess

DASH_KEY = "sk-kill9-dashscope-00112233445566"
FAST = {"XIANYING_POLL_SCALE": "0.05", "XIANYING_RETRY_ATTEMPTS": "3", "XIANYING_RETRY_MAX_WAIT": "0.2",
        "XIANYING_RETRY_INITIAL": "0.05", "XIANYING_HTTP_TIMEOUT": "5", "NO_PROXY": "127.0.0.1,localhost"}


@dataclass
class Drill:
    fake: object
    env: dict
    request: dict
    creates: Callable[[], int]
    queries: Callable[[str], int]  # how many times the vendor was asked about this task
    release: Callable[[str], None]  # let the task finish after two more RUNNING answers


def dashscope(mp4: bytes) -> Drill:
    fake = FakeDashScope(DASH_KEY, mp4).start()
    fake.plan = ["RUNNING"]  # the last status sticks: RUNNING until released

    def release(task_id: str) -> None:
        fake.plan = ["RUNNING"] * (fake.tasks[task_id]["queries"] + 2) + ["SUCCEEDED"]

    return Drill(fake, {"DASHSCOPE_API_KEY": DASH_KEY, "DASHSCOPE_HTTP_BASE_URL": fake.base_url},
                 {"engine": "dashscope", "prompt": "剑光划破夜空",
                  "params": {"model": "wanx2.1-t2v-turbo", "size": "832*480", "duration": 5}},
                 creates=lambda: fake.count("create"), queries=lambda tid: fake.tasks[tid]["queries"],
                 release=release)


def tencent(mp4: bytes) -> Drill:
    fake = FakeTencent(steps=10**6).start()  # PROCESSING until released

    def release(task_id: str) -> None:
        fake.steps = fake.tasks[task_id]["queries"] + 3

    env = {"TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
           "TENCENTCLOUD_VOD_SUBAPPID": str(SUB_APP_ID), "TENCENTCLOUD_VOD_ENDPOINT": fake.endpoint}
    return Drill(fake, env, {"engine": "tencent-vod", "prompt": "剑光划破夜空",
                             "params": {"model": "Hailuo", "model_version": "02", "duration": 6}},
                 creates=lambda: fake.count("CreateAigcVideoTask"), queries=lambda tid: fake.tasks[tid]["queries"],
                 release=release)


def child_pids(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone for our purpose
    except FileNotFoundError:
        return False


def wait_until(fn, timeout: float, what: str, proc: StudioProcess):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout}s; studio log:\n{proc.log()}")


@pytest.mark.parametrize("make", [dashscope, tencent], ids=["dashscope", "tencent-vod"])
def test_kill9_while_polling_then_restart_finishes_with_one_create(tmp_path, mp4_bytes, make):
    drill = make(mp4_bytes)
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {**FAST, **drill.env, "XIANYING_SECRETS": str(tmp_path / "secrets.yaml")}
    proc = StudioProcess(ws, env=env).start()
    try:
        client = Client(proc.url, download_files=str(tmp_path / "dl"), verbose=False)
        task_id = client.predict(drill.request, api_name="/submit")["task_id"]

        def polling():
            s = client.predict(task_id, api_name="/status")
            assert s["status"] not in ("succeeded", "failed", "cancelled"), s
            return s if s["status"] == "running" and s["remote_status"] else None

        first = wait_until(polling, 60, "the job never reached polling", proc)
        remote_id = next(iter(drill.fake.tasks))
        wait_until(lambda: drill.queries(remote_id) >= 3, 30, "the vendor was not polled", proc)
        before = client.predict(task_id, api_name="/status")
        children = child_pids(proc.proc.pid)  # the cloud process (app/cloud_host.py) among them
        assert children, "the studio runs its cloud chains in a child process"
        proc.kill9()
        wait_until(lambda: not any(alive(pid) for pid in children), 10,
                   "the studio's child processes outlived it", proc)
        asked = drill.queries(remote_id)
        assert first["remote_status"] and before["remote_status"] in ("RUNNING", "PROCESSING"), before
        assert drill.creates() == 1 and before["status"] == "running"
        time.sleep(0.5)
        assert drill.queries(remote_id) == asked  # really dead: nobody polls now

        drill.release(remote_id)
        proc = StudioProcess(ws, env=env, port=proc.port).start()
        client = Client(proc.url, download_files=str(tmp_path / "dl2"), verbose=False)
        done = wait_status(client, task_id, timeout=60)
        assert done["status"] == "succeeded", (done, proc.log())
        assert drill.creates() == 1, "the restarted studio sent a second create (billed twice)"
        assert drill.queries(remote_id) >= asked + 3  # polling resumed: two more RUNNING, then done
        assert done["outputs"] and (ws / done["outputs"][0]["file"]).stat().st_size > 0
        assert done["attempts"] == 1  # resumed, not re-run

        usage = client.predict({"engine": drill.request["engine"]}, api_name="/usage")
        assert [(r["engine"], r["jobs"], r["count"]) for r in usage["rows"]] == [(drill.request["engine"], 1, 1)]
        assert usage["rows"][0]["seconds"] == drill.request["params"]["duration"]
    finally:
        code = proc.stop()
        drill.fake.stop()
    assert code == 0, proc.log()
    log = proc.log_path.read_text(errors="replace")
    for secret in (DASH_KEY, SECRET_KEY):
        assert secret not in log
