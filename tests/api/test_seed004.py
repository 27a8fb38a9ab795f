"""Seed 004 (Tencent VOD AIGC service): create, query, and "Missing credentials" errors."""

from __future__ import annotations

import time

import pytest

from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY, SUB_APP_ID, FakeTencent

EXAMPLE = {"prompt": "一个小男孩在街上跑步", "model_name": "Hailuo", "model_version": "2.3", "duration": 6,
           "resolution": "768P", "enhance_prompt": "Enabled"}


@pytest.fixture
def tencent(monkeypatch):
    with FakeTencent() as server:
        monkeypatch.setenv("TENCENTCLOUD_VOD_ENDPOINT", server.endpoint)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("TENCENTCLOUD_VOD_SUBAPPID", str(SUB_APP_ID))
        yield server


def test_missing_credentials_names_the_variables(make_api, monkeypatch):
    api = make_api()
    r = api.client.post("/aigc/create", json=EXAMPLE)
    assert r.status_code == 500
    detail = r.json()["detail"]
    assert detail.startswith("Missing credentials") and "TENCENTCLOUD_SECRET_ID" in detail
    assert "TENCENTCLOUD_SECRET_KEY" in detail
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDonly")
    detail = api.client.post("/aigc/create", json=EXAMPLE).json()["detail"]
    assert "TENCENTCLOUD_SECRET_KEY" in detail and "TENCENTCLOUD_SECRET_ID" not in detail and "AKIDonly" not in detail
    zh = api.client.post("/aigc/create", json=EXAMPLE, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 500 and zh.json()["detail"].startswith("缺少凭据")


def test_create_and_query(make_api, tencent):
    api = make_api(start=True)
    r = api.client.post("/aigc/create", json=EXAMPLE)
    assert r.status_code == 200, r.text
    body = r.json()
    task_id = body["task_id"]
    assert body["status"] == "WAITING" and body["Response"]["TaskId"] == task_id and body["Response"]["RequestId"]
    job = api.job(task_id)
    assert (job.params["model"], job.params["model_version"], job.params["duration"], job.params["resolution"],
            job.params["enhance_prompt"]) == ("Hailuo", "2.3", 6, "768P", True)
    deadline = time.monotonic() + 30
    while (view := api.client.post("/aigc/task", json={"task_id": task_id}).json())["status"] != "FINISH":
        assert time.monotonic() < deadline, view
        time.sleep(0.05)
    assert view["error"] is None and view["progress"] == 100
    assert view["video_url"] == f"http://testserver/videos/{task_id}.mp4"
    task = view["Response"]["AigcVideoTask"]
    assert view["Response"]["TaskType"] == "AigcVideoTask" and task["Status"] == "FINISH" and task["ErrCode"] == 0
    assert task["Output"]["FileInfos"][0]["FileUrl"] == view["video_url"]


def test_bad_requests(make_api, tencent):
    api = make_api()
    assert api.client.post("/aigc/create", json={**EXAMPLE, "model_name": "Sora"}).status_code == 422
    r = api.client.post("/aigc/create", json={**EXAMPLE, "model_version": "9.9"})
    assert r.status_code == 422 and "model_version" in r.json()["detail"]
    assert api.client.post("/aigc/task", json={"task_id": "1234567890-task-id"}).status_code == 404
    assert api.client.post("/aigc/task", json={}).status_code == 422
