"""Result delivery from a worker to the studio: the real routes (app/api/uploads.py) behind the
real auth middleware, the real uploader (app/team/uploader.py) talking to them in-process.
Runs on the embedded backend: the protocol does not care where the rows live."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from starlette.testclient import TestClient

from app.db import Job
from tests.team.conftest import TINY, WAN
from app.access import LOCAL, Principal  # noqa: F401


@pytest.fixture
def api(studio):
    from fastapi import FastAPI

    from app.api.middleware import SecurityMiddleware
    from app.api.uploads import build

    studio.queue.stop()  # nothing runs: the test plays the worker
    app = FastAPI()
    app.state.studio = studio
    app.add_middleware(SecurityMiddleware, runtime=studio.ops)
    app.include_router(build(studio))
    _, key = studio.ops.keys.create("farm", admin=True)
    _, user_key = studio.ops.keys.create("alice")
    return TestClient(app), key, user_key


def claimed(studio):
    job = studio.service.submit({"engine": WAN, "prompt": "上传", "params": TINY}, LOCAL)
    assert studio.runner.claim(job)
    return Job.get_by_id(job.id)


def staged(tmp_path, job, size=300_000):
    work = tmp_path / f"work-{job.id}"
    work.mkdir()
    video = work / "wan_0.mp4"
    video.write_bytes(os.urandom(size))
    (work / "thumb.jpg").write_bytes(b"\xff\xd8thumb")
    (work / "job.json").write_text(json.dumps({"task_id": job.id}), encoding="utf-8")
    out_dir = f"outputs/2026-01-02/{job.id}"
    fields = {"outputs": [{"file": f"{out_dir}/wan_0.mp4", "kind": "video", "thumbnail": f"{out_dir}/thumb.jpg"}],
              "output_dir": out_dir, "info": {"worker": {"id": "w"}}, "finished_at": 1.0, "message": "done",
              "status": "failed"}  # a worker cannot choose the status: the studio sets succeeded
    return work, fields


def uploader(client, key, chunk=64 * 1024):
    from app.team.uploader import StudioUploader

    up = StudioUploader("http://testserver", key, chunk_bytes=chunk, deadline_s=10)
    client.headers["Authorization"] = f"Bearer {key}"
    up.client = client
    return up


def test_chunked_upload_resumes_then_commits_atomically(studio, api, tmp_path):
    client, key, _ = api
    job = claimed(studio)
    work, fields = staged(tmp_path, job)
    base = f"/api/v1/team/jobs/{job.id}/uploads/{job.fence}"
    head = (work / "wan_0.mp4").read_bytes()[:64 * 1024]
    r = client.put(f"{base}/wan_0.mp4", params={"offset": 0}, content=head,
                   headers={"Authorization": f"Bearer {key}", "X-Chunk-Sha256": hashlib.sha256(head).hexdigest()})
    assert r.status_code == 200 and r.json() == {"size": 65536}
    final = studio.settings.workspace / fields["output_dir"]
    assert not final.exists()  # nothing visible before the commit
    up = uploader(client, key)
    assert up.deliver(job.id, job.fence, work, fields) is True
    assert up.chunks_sent == 4 + 1 + 1  # the rest of the video (300 kB - 64 kB in 64 kB chunks), thumb, job.json
    assert (final / "wan_0.mp4").read_bytes() == (work / "wan_0.mp4").read_bytes()
    row = Job.get_by_id(job.id)
    assert row.status == "succeeded" and row.progress == 100 and row.output_dir == fields["output_dir"]
    assert row.outputs[0]["file"].endswith("wan_0.mp4") and row.info["worker"] == {"id": "w"}
    assert not list((studio.settings.outputs_dir / ".incoming").glob(f"{job.id}.*"))


def test_bad_chunks_names_and_keys_are_refused(studio, api, tmp_path):
    client, key, user_key = api
    job = claimed(studio)
    base = f"/api/v1/team/jobs/{job.id}/uploads/{job.fence}"
    admin = {"Authorization": f"Bearer {key}"}
    r = client.put(f"{base}/a.mp4", params={"offset": 0}, content=b"abc",
                   headers={**admin, "X-Chunk-Sha256": hashlib.sha256(b"abd").hexdigest()})
    assert r.status_code == 422 and "checksum" in r.json()["detail"]
    r = client.put(f"{base}/a.mp4", params={"offset": 5}, content=b"abc", headers=admin)
    assert r.status_code == 409 and r.json()["size"] == 0
    for bad in ("..%2Fescape.mp4", ".hidden", "a/../../b"):
        assert client.put(f"{base}/{bad}", params={"offset": 0}, content=b"x", headers=admin).status_code in (404, 405,
                                                                                                          422)
    from core.errors import ValidationError
    from app.team.incoming import check_rel

    for bad in ("../escape.mp4", "a/../b", "/abs", ".hidden", "a//b", ""):
        with pytest.raises(ValidationError):
            check_rel(bad)
    assert not any(p.name == "escape.mp4" for p in studio.settings.workspace.rglob("*"))
    assert client.get(base, headers={"Authorization": f"Bearer {user_key}"}).status_code == 403
    assert client.get(base).status_code == 401
    r = client.post(f"{base}/commit", json={"files": {"x.mp4": {"size": 1, "sha256": "0"}}, "fields": {}},
                    headers=admin)
    assert r.status_code == 422 and Job.get_by_id(job.id).status == "running"


def test_a_run_that_lost_its_lease_is_told_to_drop_its_result(studio, api, tmp_path):
    client, key, _ = api
    job = claimed(studio)
    work, fields = staged(tmp_path, job, size=1000)
    Job.update(status="queued", fence=Job.fence + 1).where(Job.id == job.id).execute()  # the monitor took it back
    assert uploader(client, key).deliver(job.id, job.fence, work, fields) is False
    assert Job.get_by_id(job.id).status == "queued"
    assert not (studio.settings.workspace / fields["output_dir"]).exists()
    r = client.get(f"/api/v1/team/jobs/{job.id}/uploads/{job.fence}", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 409 and r.json()["code"] == "stale_lease"


def test_a_worker_fetches_input_images_of_its_job(studio, api, tmp_path):
    import base64
    import io

    from PIL import Image

    client, key, _ = api
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    job = studio.service.submit({"engine": WAN, "prompt": "x", "params": TINY}, LOCAL)
    images = [{"role": "first_frame", "path": "uploads/in.png"}]
    (studio.settings.workspace / "uploads" / "in.png").write_bytes(buf.getvalue())
    Job.update(images=images).where(Job.id == job.id).execute()
    dest = tmp_path / "worker-ws" / "uploads" / "in.png"
    uploader(client, key).fetch_input(job.id, 0, dest)
    assert dest.read_bytes() == buf.getvalue() and uri
    assert client.get(f"/api/v1/team/jobs/{job.id}/inputs/3",
                      headers={"Authorization": f"Bearer {key}"}).status_code == 404
