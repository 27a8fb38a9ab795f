"""DashScope Wan engine against a loopback DashScope: happy paths, faults, cancel, secrets."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest

from core.errors import NotAvailable, ValidationError
from core.media import probe
from tests.cloud.fake_dashscope import FakeDashScope
from tests.cloud.fakeserver import Fault
from tests.cloud.helpers import png_data_uri, run_job, wait_remote
from tests.conftest import wait_for
from app.access import LOCAL, Principal  # noqa: F401

KEY = "sk-test-dashscope-5f1e2d3c4b5a69788796"
NAME = re.compile(r"^dashscope_\d{8}_\d{6}_0_[0-9a-f]{8}\.mp4$")


@pytest.fixture
def fake(monkeypatch, mp4_bytes, mp4_sound_bytes):
    server = FakeDashScope(KEY, mp4_bytes).start()
    server.video_sound = mp4_sound_bytes
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", server.base_url)
    yield server
    server.stop()


def t2v(**params) -> dict:
    return {"engine": "dashscope", "prompt": "一只白鹤飞过云海", "negative_prompt": "模糊",
            "params": {"model": "wanx2.1-t2v-turbo", "size": "832*480", **params}}


def assert_video(studio, job):
    assert job.status == "succeeded", (job.error, job.message)
    out = job.outputs[0]
    path = studio.settings.workspace / out["file"]
    assert NAME.match(path.name), path.name
    info = probe(path)
    assert info["codec"] == "h264" and info["frames"] == 8 and (info["width"], info["height"]) == (64, 48)
    assert (studio.settings.workspace / out["thumbnail"]).stat().st_size > 0
    assert out["meta"]["url"].startswith("http://127.0.0.1")
    return path


# --- happy paths ------------------------------------------------------------------------
def test_t2v_end_to_end(cloud_studio, fake):
    job = run_job(cloud_studio, t2v(duration=5, seed=7))
    path = assert_video(cloud_studio, job)
    assert fake.count("create") == 1
    create = next(r for r in fake.requests if fake.route(r) == "create")
    assert create.path == "/api/v1/services/aigc/video-generation/video-synthesis"
    assert create.headers["x-dashscope-async"] == "enable"
    body = create.json()
    assert body["model"] == "wanx2.1-t2v-turbo"
    assert body["input"] == {"prompt": "一只白鹤飞过云海", "negative_prompt": "模糊"}
    assert body["parameters"] == {"size": "832*480", "duration": 5, "seed": 7, "prompt_extend": True,
                                  "watermark": False}
    assert job.info["actual_prompt"].startswith("一只白鹤飞过云海")
    assert job.info["orig_prompt"] == "一只白鹤飞过云海"
    assert job.info["video_url"] == job.outputs[0]["meta"]["url"]
    assert job.info["usage"]["video_duration"] == 5 and job.info["video_seconds"] == 5
    record = json.loads((path.parent / "job.json").read_text(encoding="utf-8"))
    assert record["info"]["actual_prompt"] == job.info["actual_prompt"]
    assert job.remote_id and job.remote_status == "SUCCEEDED"


def test_resolution_only_maps_to_a_size_for_t2v(cloud_studio, fake):
    job = run_job(cloud_studio, {"engine": "dashscope", "prompt": "海浪",
                                 "params": {"model": "wan2.5-t2v-preview", "resolution": "720P", "duration": 10}})
    assert job.status == "succeeded", job.error
    assert fake.bodies[0]["parameters"]["size"] == "1280*720"
    assert fake.bodies[0]["parameters"]["duration"] == 10


def test_i2v_upload_goes_as_data_uri(cloud_studio, fake):
    job = run_job(cloud_studio, {"engine": "dashscope", "prompt": "让画面动起来", "image": png_data_uri(),
                                 "params": {"model": "wanx2.1-i2v-turbo", "resolution": "480P", "duration": 3}})
    assert_video(cloud_studio, job)
    body = fake.bodies[0]
    assert body["input"]["img_url"].startswith("data:image/png;base64,")
    assert body["parameters"]["resolution"] == "480P" and "size" not in body["parameters"]


def test_i2v_url_is_passed_through(cloud_studio, fake):
    url = "https://example.com/frames/first.png"
    job = run_job(cloud_studio, {"engine": "dashscope", "image": url, "params": {"model": "wan2.2-i2v-flash"}})
    assert job.status == "succeeded", job.error
    assert fake.bodies[0]["input"]["img_url"] == url


def test_kf2v_uses_the_image2video_path(cloud_studio, fake):
    job = run_job(cloud_studio, {"engine": "dashscope", "prompt": "从白天到黑夜", "image": png_data_uri(),
                                 "last_image": png_data_uri((10, 10, 90)),
                                 "params": {"model": "wanx2.1-kf2v-plus", "resolution": "720P"}})
    assert job.status == "succeeded", job.error
    create = next(r for r in fake.requests if fake.route(r) == "create")
    assert create.path.endswith("/services/aigc/image2video/video-synthesis")
    inp = create.json()["input"]
    assert inp["first_frame_url"].startswith("data:image/") and inp["last_frame_url"].startswith("data:image/")


# --- validation before any network call ---------------------------------------------------
@pytest.mark.parametrize("request_, words", [
    ({"image": "https://x.test/a.png", "params": {"model": "wanx2.1-t2v-turbo"}}, "takes no image"),
    ({"params": {"model": "wanx2.1-i2v-plus"}}, "first-frame"),
    ({"image": "https://x.test/a.png", "params": {"model": "wanx2.1-kf2v-plus"}}, "last frame"),
    ({"params": {"model": "wanx2.1-t2v-plus", "size": "832*480"}}, "does not make 832*480"),
    ({"params": {"model": "wanx2.1-t2v-turbo", "resolution": "1080P"}}, "not 1080P"),
    ({"params": {"model": "wanx2.1-t2v-turbo", "duration": 10}}, "not 10 s"),
    ({"image": "https://x.test/a.png", "params": {"model": "wan2.2-i2v-plus", "size": "1920*1080"}},
     "not a size"),
    ({"prompt": "长" * 801, "params": {}}, "at most 800"),
    ({"negative_prompt": "坏" * 501, "params": {}}, "at most 500"),
])
def test_check_refuses_before_the_network(cloud_studio, fake, request_, words):
    request = {"engine": "dashscope", "prompt": "山", **request_}
    with pytest.raises(ValidationError, match=re.escape(words)):
        cloud_studio.service.submit(request, LOCAL)
    assert fake.requests == []


def test_unknown_parameter_and_model_are_refused(cloud_studio, fake):
    with pytest.raises(ValidationError):
        cloud_studio.service.submit(t2v(fps=30), LOCAL)
    with pytest.raises(ValidationError):
        cloud_studio.service.submit(t2v(model="wan9-t2v"), LOCAL)
    assert fake.requests == []


def test_unavailable_without_key_says_what_to_set(cloud_studio, monkeypatch):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    ok, reason = cloud_studio.engines["dashscope"].available()
    assert not ok and "DASHSCOPE_API_KEY" in reason
    with pytest.raises(NotAvailable, match="DASHSCOPE_API_KEY"):
        cloud_studio.service.submit(t2v(), LOCAL)


# --- vendor failures -----------------------------------------------------------------------
def test_failed_task_keeps_the_vendor_code(cloud_studio, fake):
    fake.plan = ["RUNNING", "FAILED"]
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed"
    assert job.error_code == "InternalError.Algo" and "internal error" in job.error
    assert job.outputs == []
    wait_for(lambda: not (cloud_studio.settings.staging_dir / job.id).exists(), timeout=10)  # (just after the row)


def test_moderation_failure_of_a_task_is_said_plainly(cloud_studio, fake):
    fake.plan = ["FAILED"]
    fake.failure = ("DataInspectionFailed", "Output data may contain inappropriate content.")
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "DataInspectionFailed"
    assert "content check" in job.error and "内容安全审核" in job.error_zh


def test_moderation_refusal_at_create_is_not_retried(cloud_studio, fake):
    job = run_job(cloud_studio, {"engine": "dashscope", "prompt": "blocked words"})
    assert job.status == "failed" and job.error_code == "DataInspectionFailed"
    assert fake.count("create") == 1


def test_auth_failure_fails_at_once(cloud_studio, fake):
    fake.api_key = "sk-the-real-one"
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "InvalidApiKey"
    assert "DASHSCOPE_API_KEY" in job.error
    assert fake.count("create") == 1  # no retries


def test_missing_async_header_is_refused_by_the_fake(fake):
    import httpx

    r = httpx.post(fake.base_url + "/services/aigc/video-generation/video-synthesis",
                   headers={"Authorization": f"Bearer {KEY}"}, json={"model": "wanx2.1-t2v-turbo",
                                                                     "input": {"prompt": "x"}})
    assert r.status_code == 403 and r.json()["code"] == "AccessDenied"


def test_unknown_task_fails_clearly(cloud_studio, fake):
    fake.plan = ["UNKNOWN"]
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "UNKNOWN"
    assert "no longer knows this task" in job.error


# --- transport faults -----------------------------------------------------------------------
def test_429_storm_is_retried(cloud_studio, fake):
    throttled = {"request_id": "r", "code": "Throttling.RateQuota", "message": "Requests rate limit exceeded."}
    fake.inject("create", Fault(status=429, body=throttled, times=2))
    fake.inject("poll", Fault(status=429, body=throttled, times=4))
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error
    assert fake.count("create") == 3  # two refused, one created
    assert len(fake.tasks) == 1


def test_5xx_is_retried(cloud_studio, fake):
    fake.inject("create", Fault(status=500, body={"code": "InternalError", "message": "oops"}))
    fake.inject("poll", Fault(status=503, body="Service Unavailable", times=2))
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error
    assert len(fake.tasks) == 1


def test_persistent_5xx_fails_without_hanging(cloud_studio, fake):
    fake.inject("create", Fault(status=502, body="Bad Gateway", times=50))
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and "HTTP 502" in job.error
    assert fake.count("create") == 3


def test_slow_answers_and_a_poll_timeout(cloud_studio, fake, monkeypatch):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.6")
    fake.latency = 0.1
    fake.inject("poll", Fault(delay=1.0))  # one query answers after the timeout: retried
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error
    assert len(fake.tasks) == 1


def test_create_timeout_is_not_resent_blindly(cloud_studio, fake, monkeypatch):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.4")
    fake.inject("create", Fault(delay=0.8))
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "uncertain_create"
    assert "may have accepted" in job.error and "任务" in job.error_zh
    assert fake.count("create") == 1


def test_bad_json_is_retried(cloud_studio, fake):
    fake.inject("poll", Fault(bad_json=True, times=2))
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error


def test_truncated_download_is_retried(cloud_studio, fake):
    fake.inject("download", Fault(truncate=True))
    job = run_job(cloud_studio, t2v())
    assert_video(cloud_studio, job)
    assert fake.count("download") == 2


def test_expired_url_fails_clearly(cloud_studio, fake):
    fake.url_ttl = -60
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "url_expired"
    assert "expired" in job.error and "过期" in job.error_zh
    assert fake.count("download") == 1  # not retried
    staging = cloud_studio.settings.staging_dir / job.id
    deadline = time.monotonic() + 5  # the row says failed a moment before the folder is removed
    while staging.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not staging.exists()


# --- cancel, crash journal, secrets --------------------------------------------------------
def test_cancel_pending_cancels_at_the_provider(cloud_studio, fake, monkeypatch):
    monkeypatch.setenv("XIANYING_POLL_SCALE", "1")
    fake.hold = True
    job = wait_remote(cloud_studio, cloud_studio.service.submit(t2v(), LOCAL).id)
    assert fake.tasks[job.remote_id]["status"] == "PENDING"
    job = cloud_studio.service.cancel(job.id, LOCAL)
    assert job.status == "cancelled"
    assert job.info["cancel_note"] == "Cancelled at the provider."
    assert fake.tasks[job.remote_id]["status"] == "CANCELED"
    assert fake.count("cancel") == 1


def test_cancel_after_pending_is_refused_and_said(workspace, fake):
    from app.settings import load_settings
    from engines.cloud.dashscope import DashScopeEngine

    engine = DashScopeEngine(load_settings(workspace))
    fake.tasks["t-1"] = {"body": {}, "queries": 1, "status": "RUNNING", "url": None}
    assert engine.cancel_remote("t-1") is False


def _request(engine, job_id="a" * 32, **kw):
    from engines.base import EngineRequest

    return EngineRequest(job_id=job_id, prompt="山", negative_prompt="", params=engine.Params(**kw),
                         workdir=engine.settings.staging_dir / job_id)


def test_journal_resumes_or_refuses_after_a_crash_mid_create(workspace, fake):
    import time

    from core.errors import ProviderError
    from app.settings import load_settings
    from engines.cloud.dashscope import DashScopeEngine

    engine = DashScopeEngine(load_settings(workspace))
    req = _request(engine, seed=1)
    engine.journal.save(req.job_id, state="created", remote_id="known-task")
    assert engine.start(req) == "known-task" and fake.requests == []  # answered, never committed
    # the studio died mid-request a moment ago; nothing is listed yet: fail, never re-send
    engine.journal.save(req.job_id, state="sending", remote_id=None, sent_at=time.time())
    with pytest.raises(ProviderError, match="may have accepted") as err:
        engine.start(req)
    assert err.value.vendor_code == "uncertain_create" and "Nothing was sent twice" in err.value.en
    assert fake.count("create") == 0 and fake.count("list") == 1
    # a Retry long after the send: the vendor still lists nothing, so it was never made; a fresh create
    engine.journal.save(req.job_id, sent_at=time.time() - 3600)
    task_id = engine.start(req)
    assert task_id in fake.tasks and fake.count("create") == 1


def test_crash_after_the_vendor_made_the_task_adopts_it(workspace, fake):
    import time

    from app.settings import load_settings
    from engines.cloud.dashscope import DashScopeEngine

    engine = DashScopeEngine(load_settings(workspace))
    req = _request(engine, seed=1)
    first = engine.start(req)
    engine.journal.save(req.job_id, state="sending", remote_id=None, sent_at=time.time())  # answer never noted
    assert engine.start(req) == first and fake.count("create") == 1 and len(fake.tasks) == 1


def test_key_never_leaks(cloud_studio, fake, caplog):
    caplog.set_level(logging.DEBUG)
    ok = run_job(cloud_studio, t2v())
    fake.api_key = "sk-another"
    bad = run_job(cloud_studio, t2v())
    assert ok.status == "succeeded" and bad.status == "failed"
    texts = [caplog.text, json.dumps(cloud_studio.service.status_dict(ok), ensure_ascii=False),
             json.dumps(cloud_studio.service.status_dict(bad), ensure_ascii=False), bad.error or "", bad.error_zh or ""]
    job_json = cloud_studio.settings.workspace / ok.output_dir / "job.json"
    texts.append(job_json.read_text(encoding="utf-8"))
    for text in texts:
        assert KEY not in text
    for db_file in cloud_studio.settings.workspace.glob("studio.db*"):
        assert KEY.encode() not in db_file.read_bytes()
