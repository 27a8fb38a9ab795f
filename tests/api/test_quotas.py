"""Per-user quotas and limits from users/<name>.yaml, enforced atomically by the job service."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api.conftest import Api, serve
from app.access import LOCAL, Principal  # noqa: F401

SUBMIT = {"prompt": "A beautiful sunset over the mountains", "image_size": "480x832", "num_frames": 81,
          "guidance_scale": 5.0, "infer_steps": 50}


def test_fifty_parallel_submits_against_a_quota_of_ten(make_api):
    api = make_api(users={"bob": {"quotas": {"videos_per_day": 10}}}, keys={"bob": False}, client=False)
    headers = Api.auth(api.keys["bob"])
    with serve(api.app) as url, httpx.Client(base_url=url, timeout=60) as http:
        def one(_):
            return http.post("/video/submit", json=SUBMIT, headers=headers)

        with ThreadPoolExecutor(max_workers=50) as pool:
            replies = list(pool.map(one, range(50)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [202] * 10 + [429] * 40
    refused = next(r for r in replies if r.status_code == 429).json()["detail"]
    assert "10 of 10" in refused
    from app.db import Job, connection

    with connection():
        assert Job.select().where(Job.user == "bob").count() == 10


def test_limits_and_counting(make_api):
    from core.errors import QuotaExceeded

    api = make_api(users={
        "carol": {"quotas": {"images_per_day": 1, "videos_per_day": 2, "max_resolution": "1280x720"},
                  "limits": {"max_frames": 90, "max_duration": 10}},
        "default": {"quotas": {"videos_per_day": 0}}},
        keys={"carol": False, "dan": False})
    carol, dan = Api.auth(api.keys["carol"]), Api.auth(api.keys["dan"])
    r = api.client.post("/video/submit", json={**SUBMIT, "num_frames": 100}, headers=carol)
    assert r.status_code == 429 and "90 frames" in r.json()["detail"]
    r = api.client.post("/api/v1/videos/generate", headers=carol, json={
        "scenes": [{"id": 0, "prompt": "云海", "duration": 2}], "video_config": {"resolution": "1920x1088"}})
    assert r.status_code == 429 and "1280x720" in r.json()["detail"]
    r = api.client.post("/api/v1/videos/generate", headers=carol, json={
        "scenes": [{"id": 0, "prompt": "云海", "duration": 11}], "video_config": {"resolution": "832x480"}})
    assert r.status_code == 429 and "10 s" in r.json()["detail"]
    first = api.client.post("/video/submit", json=SUBMIT, headers=carol).json()["requestId"]
    api.client.post("/video/cancel", json={"requestId": first}, headers=carol)  # never started: not counted
    assert api.client.post("/video/submit", json=SUBMIT, headers=carol).status_code == 202
    assert api.client.post("/video/submit", json=SUBMIT, headers=carol).status_code == 202
    assert api.client.post("/video/submit", json=SUBMIT, headers=carol).status_code == 429
    # users/default.yaml covers key users without a file; the person at the machine has no quota
    assert api.client.post("/video/submit", json=SUBMIT, headers=dan).status_code == 429
    with pytest.raises(QuotaExceeded):
        api.studio.service.submit({"engine": "wan2.1-t2v-1.3b", "prompt": "UI 提交"}, Principal.acting_for("dan"), source="ui")
    assert api.studio.service.submit({"engine": "wan2.1-t2v-1.3b", "prompt": "本机"}, Principal.acting_for("local")).status == "queued"


def test_images_and_videos_are_counted_apart(make_api, tiny_sdxl_dir, tiny_wan_dir):
    api = make_api(weights={"wan2.1-t2v-1.3b": tiny_wan_dir, "sdxl": tiny_sdxl_dir},
                   users={"erin": {"quotas": {"images_per_day": 1, "videos_per_day": 1}}}, keys={"erin": False})
    erin = Api.auth(api.keys["erin"])
    image = {"prompt": "仙侠少女", "width": 64, "height": 64, "num_inference_steps": 2}
    assert api.client.post("/api/v1/images/generate", json=image, headers=erin).status_code == 200
    assert api.client.post("/api/v1/images/generate", json=image, headers=erin).status_code == 429
    assert api.client.post("/video/submit", json=SUBMIT, headers=erin).status_code == 202
    assert api.client.post("/video/submit", json=SUBMIT, headers=erin).status_code == 429


def test_a_broken_user_file_names_the_file_and_field(make_api):
    api = make_api(users={"fay": {"quotas": {"videos_per_dya": 3}}}, keys={"fay": False})
    r = api.client.post("/video/submit", json=SUBMIT, headers=Api.auth(api.keys["fay"]))
    assert r.status_code == 400 and "fay.yaml" in r.json()["detail"] and "videos_per_dya" in r.json()["detail"]


def test_a_multi_scene_video_counts_one_video_per_scene(make_api):
    api = make_api(users={"gus": {"quotas": {"videos_per_day": 3}}}, keys={"gus": False})
    gus = Api.auth(api.keys["gus"])
    scenes = [{"id": i, "prompt": f"第 {i} 幕", "duration": 1} for i in range(3)]
    assert api.client.post("/video/submit", json=SUBMIT, headers=gus).status_code == 202
    r = api.client.post("/api/v1/videos/generate", headers=gus, json={"scenes": scenes})
    assert r.status_code == 429 and "1 of 3" in r.json()["detail"] and "needs 3" in r.json()["detail"]
    from app.db import Job, connection

    with connection():  # refused up front: nothing queued, no project left behind
        assert Job.select().where(Job.user == "gus").count() == 1
    assert not list(api.studio.settings.projects_dir.glob("api-*"))
    r = api.client.post("/api/v1/videos/generate", headers=gus, json={"scenes": scenes[:2]})
    assert r.status_code == 200
    r = api.client.post("/video/submit", json=SUBMIT, headers=gus)
    assert r.status_code == 429 and "3 of 3" in r.json()["detail"]
