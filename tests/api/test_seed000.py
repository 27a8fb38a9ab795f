"""Seed 000 (AI video platform API): images, multi-scene videos, tasks, health."""

from __future__ import annotations

import re
import time

IMAGE_EXAMPLE = {"prompt": "xianxia fantasy, Han Li, calm cultivator, medium shot", "width": 1536, "height": 864,
                 "character_id": "hanli", "num_inference_steps": 40}
VIDEO_EXAMPLE = {"scenes": [{"id": 0, "prompt": "xianxia fantasy, immortal realm sky, golden scroll", "duration": 5.0},
                            {"id": 1, "prompt": "Han Li lying on sand, calm expression", "duration": 4.0}],
                 "video_config": {"fps": 24, "resolution": "1280x768", "upscale": True}}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def poll(api, task_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.client.get(f"/api/v1/tasks/{task_id}").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish: {body}")


def assert_accepted(r) -> str:
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"task_id", "status", "estimated_time", "created_at"}
    assert body["status"] == "queued" and isinstance(body["estimated_time"], int) and ISO.match(body["created_at"])
    return body["task_id"]


def test_image_example_needs_instantid(make_api):
    api = make_api()
    r = api.client.post("/api/v1/images/generate", json=IMAGE_EXAMPLE)
    assert r.status_code == 503 and "sdxl-instantid" in r.json()["detail"]


def test_image_example_without_character_is_queued(make_api, tiny_sdxl_dir):
    api = make_api(weights={"sdxl": tiny_sdxl_dir})
    body = {k: v for k, v in IMAGE_EXAMPLE.items() if k != "character_id"}
    task_id = assert_accepted(api.client.post("/api/v1/images/generate", json=body))
    job = api.job(task_id)
    assert job.engine == "sdxl" and (job.params["width"], job.params["height"]) == (1536, 864)
    assert job.params["num_inference_steps"] == 40 and job.source == "rest:000"
    view = api.client.get(f"/api/v1/tasks/{task_id}").json()
    assert view == {"task_id": task_id, "status": "queued", "progress": 0.0, "result": None, "error": None,
                    "created_at": view["created_at"], "updated_at": view["updated_at"]}
    assert ISO.match(view["created_at"]) and ISO.match(view["updated_at"])


def test_image_runs_to_a_result(make_api, tiny_sdxl_dir):
    api = make_api(weights={"sdxl": tiny_sdxl_dir}, start=True)
    task_id = assert_accepted(api.client.post("/api/v1/images/generate", json={
        "prompt": "仙侠，韩立，静坐修炼", "width": 64, "height": 64, "num_inference_steps": 2}))
    done = poll(api, task_id)
    assert done["status"] == "completed" and done["progress"] == 100 and done["error"] is None, done
    assert set(done["result"]) == {"output_path", "thumbnail"}
    assert done["result"]["output_path"] == f"http://testserver/videos/{task_id}.png"
    image = api.client.get(done["result"]["output_path"])
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    assert api.client.get(done["result"]["thumbnail"]).status_code == 200
    listed = api.client.get("/api/v1/tasks").json()["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]


def test_video_example_becomes_one_episode(make_api):
    api = make_api()
    task_id = assert_accepted(api.client.post("/api/v1/videos/generate", json=VIDEO_EXAMPLE))
    job = api.job(task_id)
    assert (job.kind, job.source, job.parent) == ("episode", "rest:000", None) and job.project.startswith("api-")
    assert job.params["resolution"] == "1280x768" and job.params["upscale"] is True
    plan = job.request["plan"]
    clips = [next(s for s in scene["steps"] if s["step"] == "clip")["request"] for scene in plan["scenes"]]
    assert [c["engine"] for c in clips] == ["wan2.1-t2v-1.3b"] * 2
    assert [(c["params"]["width"], c["params"]["height"], c["params"]["num_frames"]) for c in clips] == \
        [(1280, 768, 81), (1280, 768, 65)]  # 5 s and 4 s at Wan's 16 fps, as 4k+1 frames
    assert [c["prompt"] for c in clips] == [s["prompt"] for s in VIDEO_EXAMPLE["scenes"]]
    view = api.client.get(f"/api/v1/tasks/{task_id}").json()
    assert {k: view[k] for k in ("task_id", "status", "progress", "result", "error")} == \
        {"task_id": task_id, "status": "queued", "progress": 0.0, "result": None, "error": None}
    assert ISO.match(view["created_at"]) and ISO.match(view["updated_at"])
    assert [(s["id"], s["status"], s["task_id"]) for s in view["scenes"]] == [("0", "queued", None), ("1", "queued", None)]
    cancelled = api.client.post(f"/api/v1/tasks/{task_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and api.job(task_id).status == "cancelled"
    assert api.client.post(f"/api/v1/tasks/{task_id}/cancel").json()["status"] == "cancelled"


def test_video_scenes_are_stitched_into_one_mp4(make_api, tmp_path):
    from core.media import probe

    api = make_api(start=True)
    task_id = assert_accepted(api.client.post("/api/v1/videos/generate", json={
        "scenes": [{"id": "a", "prompt": "云海日出", "duration": 0.5, "seed": 1},
                   {"id": "b", "prompt": "御剑飞行", "duration": 0.25, "seed": 2}],
        "video_config": {"fps": 8, "resolution": "64x48", "upscale": False, "num_inference_steps": 2}}))
    done = poll(api, task_id, timeout=120)
    assert done["status"] == "completed" and done["progress"] == 100 and done["error"] is None, done
    assert set(done["result"]) == {"output_path", "thumbnail"}
    assert done["result"]["output_path"] == f"http://testserver/videos/{task_id}.mp4"
    job = api.job(task_id)
    assert job.outputs[0]["file"].startswith(f"projects/{job.project}/renders/")
    video = api.client.get(done["result"]["output_path"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    (tmp_path / "episode.mp4").write_bytes(video.content)
    info = probe(tmp_path / "episode.mp4")
    assert (info["width"], info["height"], info["fps"]) == (64, 48, 8)
    assert abs(info["frames"] / info["fps"] - 0.75) < 1e-6  # the sum of the scenes' durations
    assert api.client.get(done["result"]["thumbnail"]).status_code == 200
    clips = done["scenes"]
    assert [c["id"] for c in clips] == ["a", "b"] and all(c["status"] == "completed" for c in clips)
    assert all(api.job(c["task_id"]).parent == task_id for c in clips)
    assert api.client.get(clips[1]["output_path"]).content[4:8] == b"ftyp"
    assert api.client.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 409


def test_bad_requests(make_api):
    api = make_api()
    assert api.client.get("/api/v1/tasks/" + "0" * 32).status_code == 404
    assert api.client.get("/api/v1/tasks/..%2F..%2Fstudio.db").status_code == 404
    assert api.client.post("/api/v1/videos/generate", json={"scenes": []}).status_code == 422
    r = api.client.post("/api/v1/images/generate", json={"prompt": "x", "character_id": "../etc"})
    assert r.status_code == 422


def test_video_engine_without_weights_is_503(make_api):
    api = make_api(weights={})
    r = api.client.post("/api/v1/videos/generate", json=VIDEO_EXAMPLE)
    assert r.status_code == 503 and "Weights not found" in r.json()["detail"]


def test_health(make_api):
    api = make_api()
    body = api.client.get("/api/v1/health").json()
    assert body["status"] == "healthy" and body["database"] == "ok"
    assert body["queue"]["gpu"] == {"queued": 0, "running": 0, "workers": 1}
    assert body["engines"]["wan2.1-t2v-1.3b"] is True
