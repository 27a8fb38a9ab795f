from __future__ import annotations

import time

import pytest

from tests.conftest import install_weights
from tests.e2e.proc import StudioProcess

TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def studio_proc(tmp_path_factory, tiny_wan_dir):
    ws = tmp_path_factory.mktemp("e2e") / "工作区 ws"
    ws.mkdir()
    install_weights(ws, "wan2.1-t2v-1.3b", tiny_wan_dir)
    proc = StudioProcess(ws, env={"XIANYING_SECRETS": str(ws.parent / "secrets.yaml")}).start()
    yield proc
    code = proc.stop()
    assert code == 0, proc.log()


@pytest.fixture(scope="module")
def client(studio_proc, tmp_path_factory):
    from gradio_client import Client

    return Client(studio_proc.url, download_files=str(tmp_path_factory.mktemp("downloads")), verbose=False)


def wait_status(client, task_id, statuses=TERMINAL, timeout=120.0, min_progress=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = client.predict(task_id, api_name="/status")
        if s["status"] in statuses and (min_progress is None or s["progress"] >= min_progress):
            return s
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not reach {statuses} in {timeout}s (last: {s})")
