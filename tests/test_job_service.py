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


def test_get_refuses_malformed_ids(studio):
    for bad in ("", "../x", "A" * 32, None, 5):
        with pytest.raises(NotFound):
            studio.service.get(bad, LOCAL)


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
