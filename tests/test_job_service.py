"""Rules of the job service and the runner, on a real Studio (tiny Wan, SQLite, Huey lanes)."""

from __future__ import annotations

import base64
import io
import time

import pytest

from app.db import Job
from core.errors import Conflict, NotAvailable, NotFound, ValidationError
from tests.conftest import wait_for
from app.access import LOCAL, Principal  # noqa: F401

WAN = "wan2.1-t2v-1.3b"
TINY = {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}


def finished(service, job_id):
    return wait_for(lambda: (j := service.get(job_id, LOCAL)).status in ("succeeded", "failed", "cancelled") and j)


def test_submit_resolves_seed_and_stores_full_request(studio):
    job = studio.service.submit({"engine": WAN, "prompt": "石头村", "params": TINY}, LOCAL)
    row = Job.get_by_id(job.id)
    assert row.status in ("queued", "running", "succeeded")
    assert isinstance(row.params["seed"], int) and row.params["guidance_scale"] == 5.0
    assert finished(studio.service, job.id).status == "succeeded"


def test_fixed_seed_reproduces_the_same_video(studio):
    import numpy as np

    from core import media

    def frames(job_id):
        job = finished(studio.service, job_id)
        import av

        with av.open(str(studio.settings.workspace / job.outputs[0]["file"])) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])

    a = studio.service.submit({"engine": WAN, "prompt": "同一个种子", "params": {**TINY, "seed": 123}}, LOCAL)
    b = studio.service.submit({"engine": WAN, "prompt": "同一个种子", "params": {**TINY, "seed": 123}}, LOCAL)
    c = studio.service.submit({"engine": WAN, "prompt": "同一个种子", "params": {**TINY, "seed": 124}}, LOCAL)
    fa, fb, fc = frames(a.id), frames(b.id), frames(c.id)
    assert np.array_equal(fa, fb) and not np.array_equal(fa, fc)
    assert media.probe(studio.settings.workspace / Job.get_by_id(a.id).outputs[0]["file"])["frames"] == 5


@pytest.mark.parametrize("request_, needle", [
    ("not a dict", "JSON object"),
    ({"prompt": "x"}, "engine: required"),
    ({"engine": WAN}, "prompt"),
    ({"engine": WAN, "prompt": "x", "params": {"width": 17}}, "multiple of 16"),
    ({"engine": WAN, "prompt": "x", "params": {"num_inference_steps": 0}}, "num_inference_steps"),
    ({"engine": WAN, "prompt": "x", "image": "https://example.com/a.png"}, "cannot do i2v"),
    ({"engine": WAN, "prompt": "x" * 6000}, "prompt"),
])
def test_bad_requests_are_refused_before_anything_is_stored(studio, request_, needle):
    before = Job.select().count()
    with pytest.raises(ValidationError) as err:
        studio.service.submit(request_, LOCAL)
    assert needle in err.value.en and err.value.zh
    assert Job.select().count() == before


def test_missing_weights_make_the_engine_unavailable_with_a_reason(studio):
    import shutil

    shutil.rmtree(studio.settings.models_dir / WAN)
    info = {e["id"]: e for e in studio.service.engines_info()}[WAN]
    assert info["available"] is False
    assert str(studio.settings.models_dir / WAN) in info["reason"] and "model_index.json" in info["reason"]
    assert str(studio.settings.models_dir / WAN) in info["reason_zh"] and "找不到权重" in info["reason_zh"]
    with pytest.raises(NotAvailable) as err:
        studio.service.submit({"engine": WAN, "prompt": "x", "params": TINY}, LOCAL)
    assert "找不到权重" in err.value.zh and "Weights not found" not in err.value.zh


def test_the_settings_engine_table_speaks_one_language(studio, monkeypatch):
    import re
    import shutil

    from app.ui.settings_view import engines_markdown

    shutil.rmtree(studio.settings.models_dir / WAN)
    for name in ("DASHSCOPE_API_KEY", "ZHIPUAI_API_KEY", "ARK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    zh, en = engines_markdown(studio.service, "zh"), engines_markdown(studio.service, "en")
    assert "找不到权重" in zh and "Weights not found" not in zh and "请在“设置 → 服务商密钥”中填写" in zh
    english = en.replace(str(studio.settings.workspace), "<ws>")  # the test workspace has a Chinese name
    assert "Weights not found" in en and not re.search(r"[\u4e00-\u9fff]", english)


def test_cancel_queued_retry_and_rerun(studio):
    studio.queue.stop()  # nothing runs: the job stays queued
    job = studio.service.submit({"engine": WAN, "prompt": "排队", "params": TINY}, LOCAL)
    assert studio.service.cancel(job.id, LOCAL).status == "cancelled"
    assert studio.service.cancel(job.id, LOCAL).status == "cancelled"  # idempotent
    still_queued = studio.service.submit({"engine": WAN, "prompt": "q", "params": TINY}, LOCAL)
    with pytest.raises(Conflict):
        studio.service.retry(still_queued.id, LOCAL)
    studio.queue.start()
    retried = studio.service.retry(job.id, LOCAL)
    assert retried.id == job.id and retried.status == "queued"
    done = finished(studio.service, job.id)
    assert done.status == "succeeded"
    with pytest.raises(Conflict):
        studio.service.cancel(job.id, LOCAL)
    new = studio.service.rerun(job.id, LOCAL)
    assert new.id != job.id and new.params == done.params and new.rerun_of == job.id


def test_get_refuses_malformed_ids(studio):
    for bad in ("", "../x", "A" * 32, None, 5):
        with pytest.raises(NotFound):
            studio.service.get(bad, LOCAL)


def test_list_filters(studio):
    studio.queue.stop()
    a = studio.service.submit({"engine": WAN, "prompt": "a", "params": TINY, "project": "hanli"}, LOCAL)
    studio.service.submit({"engine": WAN, "prompt": "b", "params": TINY}, LOCAL)
    assert [j.id for j in studio.service.list({"project": "hanli"}, LOCAL)] == [a.id]
    assert len(studio.service.list({"status": ["queued"], "limit": 1}, LOCAL)) == 1
    with pytest.raises(ValidationError, match="Unknown filter"):
        studio.service.list({"colour": "red"}, LOCAL)


def test_images_data_uri_job_ref_and_forbidden_paths(studio, tmp_path):
    from PIL import Image

    from app.inputs import resolve_image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    ws = studio.settings.workspace
    got = resolve_image(uri, "first_frame", ws, lambda r: studio.service.image_of_job(r, LOCAL))
    assert got["path"].startswith("uploads/") and (ws / got["path"]).exists()
    assert resolve_image("https://x/y.png", "first_frame", ws, None) == {"role": "first_frame", "url": "https://x/y.png"}
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(buf.getvalue())
    with pytest.raises(ValidationError, match="cannot be used"):
        resolve_image(str(outside), "first_frame", ws, None)
    with pytest.raises(ValidationError, match="could not be read"):
        resolve_image("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "first_frame", ws, None)
    video_job = studio.service.submit({"engine": WAN, "prompt": "v", "params": TINY}, LOCAL)
    finished(studio.service, video_job.id)
    with pytest.raises(ValidationError, match="no image output"):
        resolve_image(f"job:{video_job.id}", "first_frame", ws, lambda r: studio.service.image_of_job(r, LOCAL))


def test_reconcile_requeues_interrupted_runs_within_bounds(studio):
    studio.queue.stop()
    a = studio.service.submit({"engine": WAN, "prompt": "a", "params": TINY}, LOCAL)
    b = studio.service.submit({"engine": WAN, "prompt": "b", "params": TINY}, LOCAL)
    Job.update(status="running", attempts=1).where(Job.id == a.id).execute()
    Job.update(status="running", attempts=studio.settings.queue.max_attempts).where(Job.id == b.id).execute()
    (studio.settings.staging_dir / a.id).mkdir(parents=True)
    (studio.settings.staging_dir / a.id / "half.mp4").write_bytes(b"\0" * 10)
    counts = studio.runner.reconcile()
    assert counts["requeued"] == 1 and counts["failed"] == 1
    assert not (studio.settings.staging_dir / a.id).exists()
    failed = studio.service.get(b.id, LOCAL)
    assert failed.status == "failed" and failed.error.startswith("Interrupted") and failed.error_zh
    studio.queue.start()
    assert finished(studio.service, a.id).status == "succeeded"


def test_submit_wakes_the_idle_lane(studio):
    """An enqueue notifies the lane's waker, which idle workers wait on instead of their back-off
    sleep (the latency itself is measured in bench/spine.py, not asserted here)."""
    job = studio.service.submit({"engine": WAN, "prompt": "warm", "params": TINY}, LOCAL)
    finished(studio.service, job.id)
    waker = studio.queue.hueys[job.lane].waker
    seen = waker.generation
    job = studio.service.submit({"engine": WAN, "prompt": "fast", "params": TINY}, LOCAL)
    assert waker.generation > seen
    assert finished(studio.service, job.id).status == "succeeded"
