"""Operations: the retention sweep and Prometheus metrics."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api
from app.access import LOCAL, Principal  # noqa: F401

TINY = {"engine": "wan2.1-t2v-1.3b", "prompt": "仙鹤飞过云海",
        "params": {"width": 32, "height": 32, "num_frames": 5, "num_inference_steps": 1}}


def age(api, job_id: str, hours: float) -> None:
    from app.db import Job, connection

    with connection():
        Job.update(finished_at=time.time() - hours * 3600).where(Job.id == job_id).execute()


def test_retention_sweeps_old_scratch_outputs_only(make_api):
    api = make_api(start=True)
    assert api.studio.ops.sweeper._thread.is_alive()
    scratch = api.studio.service.submit(TINY, Principal.acting_for("local"), source="rest:001")
    ui = api.studio.service.submit(TINY, Principal.acting_for("local"), source="ui")
    project = api.studio.service.submit({**TINY, "project": "demo"}, Principal.acting_for("local"), source="api")
    fresh = api.studio.service.submit(TINY, Principal.acting_for("local"), source="api")
    for job in (scratch, ui, project, fresh):
        assert api.wait(job.id).status == "succeeded"
    for job in (scratch, ui, project):
        age(api, job.id, 2)
    folders = {j.id: api.studio.settings.workspace / api.job(j.id).output_dir for j in (scratch, ui, project, fresh)}
    assert api.studio.ops.sweeper.sweep() == 1
    assert not folders[scratch.id].exists()
    assert all(folders[j.id].is_dir() for j in (ui, project, fresh))
    cleaned = api.job(scratch.id)
    assert "retention" in cleaned.info["cleaned"] and cleaned.status == "succeeded"
    r = api.client.get(f"/videos/{scratch.id}.mp4")
    assert r.status_code == 404 and "retention" in r.json()["detail"]
    view = api.client.get(f"/api/v1/tasks/{scratch.id}").json()
    assert view["status"] == "completed" and view["result"]["output_path"] is None and view["result"]["note"]
    assert api.client.post("/video/status", json={"requestId": scratch.id}).json()["results"]["videos"] == []
    assert api.studio.ops.sweeper.sweep() == 0  # already cleaned
    api.studio.ops.sweeper.include_ui = True
    assert api.studio.ops.sweeper.sweep() == 1 and not folders[ui.id].exists()
    assert folders[project.id].is_dir()  # project assets are never swept
    api.studio.stop()
    assert api.studio.ops.sweeper._thread is None


def test_retention_can_be_turned_off(make_api):
    api = make_api(start=True)
    job = api.studio.service.submit(TINY, Principal.acting_for("local"), source="api")
    api.wait(job.id)
    age(api, job.id, 1000)
    api.studio.settings.storage.retention_hours = 0
    assert api.studio.ops.sweeper.sweep() == 0


def metric(text: str, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_metrics(make_api):
    from app.db import Job, connection

    api = make_api(start=True, rest={"auth": "required"}, keys={"ops": True})
    job = api.studio.service.submit(TINY, Principal.acting_for("local"), source="api")
    api.wait(job.id)
    api.studio.service.submit({**TINY, "params": {**TINY["params"], "num_inference_steps": 200}}, Principal.acting_for("local"),
                              source="api")
    with connection():
        Job.create(id="f" * 32, engine="dashscope", kind="cloud", lane="io", status="failed",
                   error_code="Throttling.RateQuota", created_at=time.time(), updated_at=time.time())
    r = api.client.get("/metrics")  # public by default, for scrapers
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, "xianying_jobs", engine="wan2.1-t2v-1.3b", status="succeeded") == 1
    assert metric(text, "xianying_job_duration_seconds_count", engine="wan2.1-t2v-1.3b") == 1
    assert metric(text, "xianying_job_duration_seconds_bucket", engine="wan2.1-t2v-1.3b", le="+Inf") == 1
    assert metric(text, "xianying_job_duration_seconds_bucket", engine="wan2.1-t2v-1.3b", le="3600.0") == 1
    assert metric(text, "xianying_provider_errors_total", engine="dashscope", code="Throttling.RateQuota") == 1
    assert metric(text, "xianying_queue_depth", lane="io") == 0
    running = metric(text, "xianying_running_jobs", lane="gpu") + metric(text, "xianying_queue_depth", lane="gpu")
    assert running == 1
    assert metric(text, "xianying_api_keys_active") == 1
    assert "xianying_gpu_memory_bytes" not in text  # no CUDA here


def test_metrics_can_require_a_key(make_api):
    api = make_api(rest={"auth": "required", "public_metrics": False}, keys={"ops": False})
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=Api.auth(api.keys["ops"])).status_code == 200
