"""Seed 003 (Ark video generation API): 201 envelopes, statuses, {detail} errors, health."""

from __future__ import annotations

import time

import pytest

from tests.cloud.fake_ark import API_KEY, FakeArk

TEXT = {"prompt": "A cat playing piano in a cozy living room"}
IMAGE = {"prompt": "A beautiful sunset scene with moving clouds", "image_url": "https://example.com/image.jpg"}
FLAGS = {"prompt": "A beautiful sunset scene with moving clouds --duration 5", "image_url": "https://example.com/image.jpg"}
ENDPOINT = "ep-20260129105436-445p4"


@pytest.fixture
def ark(monkeypatch):
    with FakeArk() as server:
        monkeypatch.setenv("ARK_BASE_URL", server.base)
        monkeypatch.setenv("ARK_API_KEY", API_KEY)
        yield server


def test_create_examples_answer_201_envelopes(make_api, ark):
    api = make_api(rest={"seed003_model": ENDPOINT})
    for example in (TEXT, IMAGE, FLAGS):
        r = api.client.post("/api/v1/videos/tasks", json=example)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["code"] == 0 and body["message"] == "Video generation task created successfully"
        data = body["data"]
        assert set(data) == {"id", "model", "status", "created_at", "updated_at", "result", "error"}
        assert data["model"] == ENDPOINT and data["status"] == "pending" and isinstance(data["created_at"], int)
        assert data["updated_at"] is None and data["result"] is None and data["error"] is None
        query = api.client.get(f"/api/v1/videos/tasks/{data['id']}")
        assert query.status_code == 200 and query.json()["message"] == "Task query successful"
        assert query.json()["data"]["status"] == "pending"
    job = api.job(data["id"])
    assert job.prompt == FLAGS["prompt"] and job.images[0]["url"] == "https://example.com/image.jpg"


def test_task_completes_with_a_video_url(make_api, ark):
    api = make_api(start=True)
    task_id = api.client.post("/api/v1/videos/tasks", json=TEXT).json()["data"]["id"]
    seen = set()
    deadline = time.monotonic() + 30
    while True:
        data = api.client.get(f"/api/v1/videos/tasks/{task_id}").json()["data"]
        seen.add(data["status"])
        if data["status"] in ("completed", "failed"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert data["status"] == "completed", data
    assert seen <= {"pending", "processing", "completed"}
    assert data["result"]["video_url"] == f"http://testserver/videos/{task_id}.mp4"
    assert data["result"]["duration"] > 0 and "x" in data["result"]["resolution"]
    assert isinstance(data["updated_at"], int) and data["error"] is None
    assert api.client.get(data["result"]["video_url"]).content[4:8] == b"ftyp"


def test_failed_task_reports_its_error(make_api, ark):
    api = make_api(start=True)
    task_id = api.client.post("/api/v1/videos/tasks", json={"prompt": "[[fail]] a cat"}).json()["data"]["id"]
    api.wait(task_id)
    data = api.client.get(f"/api/v1/videos/tasks/{task_id}").json()["data"]
    assert data["status"] == "failed" and data["result"] is None and data["error"]


def test_errors_use_detail_and_the_seed_codes(make_api):
    api = make_api()
    r = api.client.post("/api/v1/videos/tasks", json={"prompt": ""})
    assert r.status_code == 400 and r.json() == {"detail": "Prompt cannot be empty"}
    r = api.client.post("/api/v1/videos/tasks", json={"image_url": "https://example.com/a.jpg"})
    assert r.status_code == 400 and "prompt" in r.json()["detail"]
    r = api.client.post("/api/v1/videos/tasks", json={"prompt": "a cat", "image_url": "file:///etc/passwd"})
    assert r.status_code == 400
    r = api.client.post("/api/v1/videos/tasks", json=TEXT)
    assert r.status_code == 503
    assert r.json()["detail"].startswith("Failed to connect to video generation service") and \
        "ARK_API_KEY" in r.json()["detail"]
    r = api.client.get("/api/v1/videos/tasks/task_abc123xyz")
    assert r.status_code == 404 and set(r.json()) == {"detail"}
    health = api.client.get("/api/v1/videos/health")
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"


def test_health(make_api, ark):
    api = make_api()
    assert api.client.get("/api/v1/videos/health").json() == {
        "status": "healthy", "service": "video_generation", "message": "Service is running normally"}
