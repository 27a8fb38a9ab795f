"""Seed 001 (Wan2.1-T2V-1.3B service): the documented requests, the parameter table, statuses."""

from __future__ import annotations

import re
from app.access import LOCAL, Principal  # noqa: F401

EXAMPLE = {"model": "Wan2.1-T2V-1.3B", "prompt": "A beautiful sunset over the mountains", "image_size": "480x832",
           "num_frames": 81, "guidance_scale": 5.0, "infer_steps": 50}
TINY = {"engine": "wan2.1-t2v-1.3b", "prompt": "仙鹤飞过云海",
        "params": {"width": 32, "height": 32, "num_frames": 5, "num_inference_steps": 2, "seed": 7}}


def test_documented_submit_status_cancel(make_api):
    api = make_api()
    r = api.client.post("/video/submit", json=EXAMPLE)
    assert r.status_code == 202
    assert list(r.json()) == ["requestId"] and re.fullmatch(r"[0-9a-f]{32}", r.json()["requestId"])
    rid = r.json()["requestId"]
    job = api.job(rid)
    assert (job.engine, job.source, job.user) == ("wan2.1-t2v-1.3b", "rest:001", "local")
    assert {k: job.params[k] for k in ("width", "height", "num_frames", "num_inference_steps", "guidance_scale")} == \
        {"width": 480, "height": 832, "num_frames": 81, "num_inference_steps": 50, "guidance_scale": 5.0}

    status = api.client.post("/video/status", json={"requestId": rid})
    assert status.status_code == 200
    assert status.json() == {"status": "InQueue", "reason": "", "position": 0, "results": None}

    assert api.client.post("/video/cancel", json={"requestId": rid}).json() == {"status": "Succeed"}
    after = api.client.post("/video/status", json={"requestId": rid}).json()
    assert after["status"] == "Failed" and after["reason"] == "Cancelled"

    other = api.client.post("/video/submit", json=EXAMPLE).json()["requestId"]
    r = api.client.request("DELETE", "/video/cancel", json={"requestId": other})
    assert r.status_code == 200 and r.json() == {"status": "Succeed"}
    assert api.job(other).status == "cancelled"


def test_parameter_table_is_enforced_exactly(make_api):
    api = make_api()
    bad = [("prompt", "x" * 9), ("prompt", "x" * 501), ("image_size", "512x512"), ("image_size", "832*480"),
           ("num_frames", 23), ("num_frames", 121), ("guidance_scale", 0.99), ("guidance_scale", 20.01),
           ("infer_steps", 19), ("infer_steps", 101), ("seed", -1), ("seed", 2147483648),
           ("model", "Wan2.1-T2V-14B"), ("num_frames", 81.5)]
    for field, value in bad:
        r = api.client.post("/video/submit", json={**EXAMPLE, field: value})
        assert r.status_code == 422, (field, value, r.text)
        assert any(err["loc"][-1] == field for err in r.json()["detail"]), r.text
    for field in ("prompt", "image_size", "num_frames", "guidance_scale", "infer_steps"):
        body = {k: v for k, v in EXAMPLE.items() if k != field}
        assert api.client.post("/video/submit", json=body).status_code == 422, field
    good = [("prompt", "x" * 10), ("prompt", "x" * 500), ("image_size", "832x480"), ("num_frames", 24),
            ("num_frames", 120), ("guidance_scale", 1.0), ("guidance_scale", 20.0), ("infer_steps", 20),
            ("infer_steps", 100), ("seed", 0), ("seed", 2147483647)]
    for field, value in good:
        r = api.client.post("/video/submit", json={**EXAMPLE, field: value})
        assert r.status_code == 202, (field, value, r.text)
        job = api.job(r.json()["requestId"])
        if field == "num_frames":
            assert job.params["num_frames"] == {24: 25, 120: 121}[value]  # Wan's 4k+1
        if field == "image_size":
            assert (job.params["width"], job.params["height"]) == (832, 480)
        if field == "seed":
            assert job.params["seed"] == value
    assert api.client.post("/video/submit", json={k: v for k, v in EXAMPLE.items() if k != "model"}).status_code == 202


def test_unknown_tasks_are_404(make_api):
    api = make_api()
    for rid in ("0" * 32, "../../studio.db", "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"):
        assert api.client.post("/video/status", json={"requestId": rid}).status_code == 404
        assert api.client.post("/video/cancel", json={"requestId": rid}).status_code == 404
    assert api.client.post("/video/status", json={}).status_code == 422


def test_missing_weights_is_a_500_that_says_what_to_do(make_api):
    api = make_api(weights={})
    r = api.client.post("/video/submit", json=EXAMPLE)
    assert r.status_code == 500
    assert "model_index.json" in r.json()["detail"] and "wan2.1-t2v-1.3b" in r.json()["detail"]


def test_finished_job_status_and_download_url(make_api):
    api = make_api(start=True)
    job = api.studio.service.submit(TINY, Principal.acting_for("local"), source="rest:001")
    api.wait(job.id)
    body = api.client.post("/video/status", json={"requestId": job.id}).json()
    assert body["status"] == "Succeed", body
    assert set(body["results"]) == {"videos", "timings", "seed"} and body["results"]["seed"] == 7
    assert isinstance(body["results"]["timings"]["inference"], float)
    url = body["results"]["videos"][0]["url"]
    assert url == f"http://testserver/videos/{job.id}.mp4"
    video = api.client.get(url)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    thumb = api.client.get(f"/videos/{job.id}_thumb.jpg")
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert api.client.get(f"/videos/{job.id}.png").status_code == 404  # wrong type
    assert api.client.post("/video/cancel", json={"requestId": job.id}).status_code == 409  # already done
