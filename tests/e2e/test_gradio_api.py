"""The scripting contract, driven with gradio_client against `python launch.py` in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import media
from tests.e2e.conftest import wait_status

WAN = "wan2.1-t2v-1.3b"


def test_engines_lists_tiny_wan_available(client):
    engines = {e["id"]: e for e in client.predict(api_name="/engines")}
    wan = engines[WAN]
    assert wan["available"] is True and wan["kind"] == "local" and wan["tasks"] == ["t2v"]
    props = wan["params_schema"]["properties"]
    assert {"width", "height", "num_frames", "num_inference_steps", "guidance_scale", "seed"} <= set(props)


def test_submit_status_result_gives_playable_mp4(client, studio_proc):
    req = {"engine": WAN, "prompt": "韩立御剑飞行，云海翻腾", "negative_prompt": "模糊",
           "params": {"width": 48, "height": 32, "num_frames": 13, "num_inference_steps": 3, "seed": 42}}
    sub = client.predict(req, api_name="/submit")
    assert sub["status"] == "queued" and len(sub["task_id"]) == 32
    status = wait_status(client, sub["task_id"])
    assert status["status"] == "succeeded", status
    assert status["progress"] == 100 and status["params"]["seed"] == 42
    assert status["outputs"][0]["kind"] == "video"
    path = Path(client.predict(sub["task_id"], api_name="/result"))
    assert path.suffix == ".mp4" and not str(path).startswith(str(studio_proc.workspace))
    info = media.probe(path)
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert (info["width"], info["height"], info["frames"]) == (48, 32, 13)
    job_dir = studio_proc.workspace / Path(status["outputs"][0]["file"]).parent
    assert (job_dir / "job.json").exists() and (job_dir / "thumb.jpg").exists()
    tasks = client.predict({"engine": WAN, "status": "succeeded"}, api_name="/tasks")
    assert sub["task_id"] in [t["task_id"] for t in tasks]


def test_random_seed_is_resolved_and_rerun_reuses_it(client):
    req = {"engine": WAN, "prompt": "青云门 山门", "params": {"width": 16, "height": 16, "num_frames": 5,
                                                          "num_inference_steps": 2}}
    first = wait_status(client, client.predict(req, api_name="/submit")["task_id"])
    seed = first["params"]["seed"]
    assert isinstance(seed, int)
    again = client.predict(first["task_id"], api_name="/rerun")
    second = wait_status(client, again["task_id"])
    assert second["params"] == first["params"] and second["rerun_of"] == first["task_id"]


def test_cancel_running_job_ends_cancelled_without_files(client, studio_proc):
    req = {"engine": WAN, "prompt": "long job", "params": {"width": 96, "height": 96, "num_frames": 33,
                                                           "num_inference_steps": 200}}
    task_id = client.predict(req, api_name="/submit")["task_id"]
    wait_status(client, task_id, statuses={"running"}, min_progress=0.1)
    assert client.predict(task_id, api_name="/cancel")["task_id"] == task_id
    final = wait_status(client, task_id, timeout=30)
    assert final["status"] == "cancelled" and final["outputs"] == []
    assert not list(studio_proc.workspace.glob(f"outputs/*/{task_id}"))
    assert not (studio_proc.workspace / "tmp" / task_id).exists()


@pytest.mark.parametrize("request_, needle", [
    ({"engine": "no-such-engine", "prompt": "x"}, "Unknown engine"),
    ({"engine": WAN, "prompt": "x", "params": {"num_frames": 10}}, "4k+1"),
    ({"engine": WAN, "prompt": "x", "params": {"steps": 10}}, "unknown parameter"),
    ({"engine": WAN, "prompt": "   "}, "prompt"),
    ({"engine": WAN, "prompt": "x", "colour": "red"}, "colour"),
])
def test_invalid_requests_get_clear_errors(client, request_, needle):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as err:
        client.predict(request_, api_name="/submit")
    assert needle in str(err.value) and "Traceback" not in str(err.value)


def test_unknown_task_and_traversal_ids_are_not_found(client):
    from gradio_client.exceptions import AppError

    for bad in ("0" * 32, "../../etc/passwd", "x" * 5000):
        with pytest.raises(AppError, match="No task"):
            client.predict(bad, api_name="/status")
