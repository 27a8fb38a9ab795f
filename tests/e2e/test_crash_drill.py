"""kill -9 the studio with one job running and one queued; restart; both finish, nothing partial."""

from __future__ import annotations

import json

from gradio_client import Client

from tests.conftest import install_weights
from tests.e2e.conftest import wait_status
from tests.e2e.proc import StudioProcess

WAN = "wan2.1-t2v-1.3b"


def _outputs_are_whole(ws):
    for job_json in ws.glob("outputs/*/*/job.json"):
        data = json.loads(job_json.read_text(encoding="utf-8"))
        for out in data["outputs"]:
            assert (ws / out["file"]).stat().st_size > 0
    assert not list(ws.glob("outputs/**/.*.part")) and not list(ws.glob("outputs/**/.*.mp4"))


def test_kill9_while_running_and_queued_then_restart(tmp_path, tiny_wan_dir):
    ws = tmp_path / "ws"
    ws.mkdir()
    install_weights(ws, WAN, tiny_wan_dir)
    env = {"XIANYING_SECRETS": str(tmp_path / "secrets.yaml")}
    proc = StudioProcess(ws, env=env).start()
    client = Client(proc.url, download_files=str(tmp_path / "dl"), verbose=False)
    slow = {"engine": WAN, "prompt": "slow", "params": {"width": 96, "height": 96, "num_frames": 33,
                                                       "num_inference_steps": 120, "seed": 7}}
    quick = {"engine": WAN, "prompt": "queued behind", "params": {"width": 16, "height": 16, "num_frames": 5,
                                                                  "num_inference_steps": 2, "seed": 8}}
    running = client.predict(slow, api_name="/submit")["task_id"]
    wait_status(client, running, statuses={"running"}, min_progress=5)
    queued = client.predict(quick, api_name="/submit")["task_id"]
    assert client.predict(queued, api_name="/status")["status"] == "queued"
    proc.kill9()
    assert (ws / "tmp" / running).exists()  # the killed run left its staging folder...

    proc2 = StudioProcess(ws, env=env, port=proc.port).start()
    try:
        client = Client(proc2.url, download_files=str(tmp_path / "dl2"), verbose=False)
        first = wait_status(client, running, timeout=180)
        second = wait_status(client, queued, timeout=180)
        assert first["status"] == "succeeded" and first["attempts"] == 2, first
        assert second["status"] == "succeeded" and second["attempts"] == 1, second
        assert first["params"]["seed"] == 7
        assert not (ws / "tmp" / running).exists()  # ...which the restart removed
        _outputs_are_whole(ws)
    finally:
        assert proc2.stop() == 0, proc2.log()
