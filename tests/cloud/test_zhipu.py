"""Zhipu CogVideoX / Vidu engine against a loopback BigModel: paths, faults, idempotency, secrets."""

from __future__ import annotations

import json
import logging
import re

import pytest

from core.errors import NotAvailable, ProviderError, ValidationError
from core.media import probe
from tests.cloud.fake_zhipu import FakeZhipu
from tests.cloud.fakeserver import Fault
from tests.cloud.helpers import png_data_uri, run_job, wait_job, wait_remote
from app.access import LOCAL, Principal  # noqa: F401

KEY = "f00dfeedcafe4b1d9a7e.ZhiPuSecretPart0042"
NAME = re.compile(r"^zhipu_\d{8}_\d{6}_0_[0-9a-f]{8}\.mp4$")


@pytest.fixture
def fake(monkeypatch, mp4_bytes, mp4_sound_bytes):
    server = FakeZhipu(KEY, mp4_bytes).start()
    server.video_sound = mp4_sound_bytes
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)
    monkeypatch.setenv("ZHIPUAI_BASE_URL", server.base_url)
    yield server
    server.stop()


def t2v(**params) -> dict:
    return {"engine": "zhipu", "prompt": "竹林里的熊猫在吃竹子",
            "params": {"model": "cogvideox-3", "quality": "speed", "size": "1920x1080", "fps": 30, **params}}


def assert_video(studio, job):
    assert job.status == "succeeded", (job.error, job.message)
    out = job.outputs[0]
    path = studio.settings.workspace / out["file"]
    assert NAME.match(path.name), path.name
    info = probe(path)
    assert info["codec"] == "h264" and info["frames"] == 8
    assert (studio.settings.workspace / out["thumbnail"]).stat().st_size > 0
    assert out["meta"]["cover_image_url"].startswith("http://127.0.0.1")
    return path


# --- happy paths ------------------------------------------------------------------------
def test_t2v_end_to_end(cloud_studio, fake):
    job = run_job(cloud_studio, t2v(duration=10, with_audio=True))
    assert_video(cloud_studio, job)
    create = next(r for r in fake.requests if fake.route(r) == "create")
    assert create.path == "/api/paas/v4/videos/generations"
    assert create.headers["authorization"] == f"Bearer {KEY}"
    assert create.json() == {"model": "cogvideox-3", "prompt": "竹林里的熊猫在吃竹子", "quality": "speed",
                             "size": "1920x1080", "fps": 30, "duration": 10, "with_audio": True,
                             "request_id": f"xianying-{job.id}-1"}
    assert job.remote_status == "SUCCESS" and job.info["cover_image_urls"]
    assert job.outputs[0]["meta"]["url"] == job.info["video_urls"][0]


def test_i2v_cogvideox_upload_as_data_uri(cloud_studio, fake):
    job = run_job(cloud_studio, {"engine": "zhipu", "prompt": "让图片动起来", "image": png_data_uri(),
                                 "params": {"model": "cogvideox-2"}})
    assert_video(cloud_studio, job)
    assert fake.bodies[0]["image_url"].startswith("data:image/png;base64,")


def test_vidu_image_url_passed_through(cloud_studio, fake):
    url = "https://example.com/hero.jpg"
    job = run_job(cloud_studio, {"engine": "zhipu", "prompt": "增加动态", "image": url,
                                 "params": {"model": "vidu2-image", "duration": 4, "movement_amplitude": "auto"}})
    assert job.status == "succeeded", job.error
    assert fake.bodies[0]["image_url"] == url and fake.bodies[0]["duration"] == 4


def test_vidu_start_end_and_reference_send_lists(cloud_studio, fake):
    first, last = png_data_uri((250, 0, 0)), png_data_uri((0, 0, 250))
    job = run_job(cloud_studio, {"engine": "zhipu", "prompt": "平滑过渡", "image": first, "last_image": last,
                                 "params": {"model": "viduq1-start-end", "size": "1920x1080"}})
    assert job.status == "succeeded", job.error
    assert len(fake.bodies[0]["image_url"]) == 2
    job = run_job(cloud_studio, {"engine": "zhipu", "prompt": "保持角色特征",
                                 "reference_images": [first, "https://example.com/ref.png"],
                                 "params": {"model": "vidu2-reference", "aspect_ratio": "16:9", "with_audio": True}})
    assert job.status == "succeeded", job.error
    assert fake.bodies[1]["image_url"][1] == "https://example.com/ref.png"
    assert fake.bodies[1]["aspect_ratio"] == "16:9"


# --- validation before any network call ---------------------------------------------------
@pytest.mark.parametrize("request_, words", [
    ({"params": {"model": "viduq1-image"}}, "takes one first-frame image"),
    ({"image": "https://x.test/a.png", "params": {"model": "viduq1-text"}}, "takes text only"),
    ({"image": "https://x.test/a.png", "params": {"model": "vidu2-start-end"}}, "first and a last frame"),
    ({"params": {"model": "cogvideox-3", "size": "1000x1000"}}, "does not make 1000x1000"),
    ({"params": {"model": "cogvideox-3", "duration": 4}}, "not 4 s"),
    ({"params": {"model": "viduq1-text", "fps": 60}}, "no 'fps' setting"),
    ({"params": {"model": "cogvideox-3", "style": "anime"}}, "no 'style' setting"),
    ({"params": {"model": "viduq1-text", "size": "1280x720"}}, "aspect_ratio"),
    ({"negative_prompt": "模糊", "params": {}}, "no negative prompt"),
    ({"prompt": "长" * 513, "params": {}}, "at most 512"),
])
def test_check_refuses_before_the_network(cloud_studio, fake, request_, words):
    request = {"engine": "zhipu", "prompt": "山", **request_}
    with pytest.raises(ValidationError, match=re.escape(words)):
        cloud_studio.service.submit(request, LOCAL)
    assert fake.requests == []


def test_unavailable_without_key_says_what_to_set(cloud_studio, monkeypatch):
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    ok, reason = cloud_studio.engines["zhipu"].available()
    assert not ok and "ZHIPUAI_API_KEY" in reason
    with pytest.raises(NotAvailable, match="ZHIPUAI_API_KEY"):
        cloud_studio.service.submit(t2v(), LOCAL)


# --- vendor failures -----------------------------------------------------------------------
def test_failed_task(cloud_studio, fake):
    fake.plan = ["PROCESSING", "FAIL"]
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "FAIL" and "could not generate" in job.error


def test_moderation_refusal_is_plain_and_not_retried(cloud_studio, fake):
    job = run_job(cloud_studio, {"engine": "zhipu", "prompt": "blocked words"})
    assert job.status == "failed" and job.error_code == "1301"
    assert "content check" in job.error and "内容安全审核" in job.error_zh
    assert fake.count("create") == 1


def test_moderation_failure_of_a_task(cloud_studio, fake):
    fake.plan = ["FAIL"]
    fake.fail_error = {"code": "1301", "message": "unsafe output"}
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "1301" and "content check" in job.error


def test_auth_failure_fails_at_once(cloud_studio, fake):
    fake.api_key = "other.key"
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "1002" and "ZHIPUAI_API_KEY" in job.error
    assert fake.count("create") == 1


def test_arrears_429_is_not_retried(cloud_studio, fake):
    fake.inject("create", Fault(status=429, body={"error": {"code": "1113", "message": "您的账户已欠费"}}))
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "1113" and "overdue" in job.error
    assert fake.count("create") == 1


# --- transport faults -----------------------------------------------------------------------
def test_429_storm_is_retried(cloud_studio, fake):
    busy = {"error": {"code": "1302", "message": "您当前使用该API的并发数过高"}}
    fake.inject("create", Fault(status=429, body=busy, times=2))
    fake.inject("poll", Fault(status=429, body=busy, times=4))
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error
    assert fake.created == 1 and fake.count("create") == 3


def test_poll_5xx_and_bad_json_are_retried(cloud_studio, fake):
    fake.inject("poll", Fault(status=503, body="busy"), Fault(bad_json=True))
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error
    assert fake.created == 1


def test_5xx_after_the_task_was_made_is_not_resent(cloud_studio, fake):
    """A 500 after Zhipu read the create may come after the task was made: fail, naming the request id."""
    fake.inject("create", Fault(status_after=500, body={"error": {"code": "500", "message": "Internal Error"}}))
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "uncertain_create"
    assert f"xianying-{job.id}-1" in job.error and f"xianying-{job.id}-1" in job.error_zh
    assert "Nothing was sent twice" in job.error and "未重复提交" in job.error_zh
    assert fake.created == 1 and fake.count("create") == 1


def test_slow_answers(cloud_studio, fake, monkeypatch):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.6")
    fake.latency = 0.1
    fake.inject("poll", Fault(delay=1.0))
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error


def test_lost_create_answer_is_never_resent_until_retry_anyway(cloud_studio, fake, monkeypatch):
    """The first create is slow (Zhipu made the task, we timed out). Zhipu does not deduplicate on
    request_id, so nothing is sent again: the job fails saying the task may exist. A plain Retry
    does not send either; only "Retry anyway" (resend=True) sends a new create, under a new key."""
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.4")
    fake.inject("create", Fault(late=0.8))
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "uncertain_create"
    assert "may have accepted" in job.error and f"xianying-{job.id}-1" in job.error
    assert fake.created == 1 and fake.count("create") == 1
    job = wait_job(cloud_studio, cloud_studio.service.retry(job.id, LOCAL).id)
    assert job.status == "failed" and job.error_code == "uncertain_create"
    assert fake.count("create") == 1
    job = wait_job(cloud_studio, cloud_studio.service.retry(job.id, LOCAL, resend=True).id)
    assert job.status == "succeeded", job.error
    assert fake.created == 2 and fake.bodies[-1]["request_id"] == f"xianying-{job.id}-2"


def test_cut_answer_is_not_resent(cloud_studio, fake):
    fake.inject("create", Fault(truncate=True))  # the task is made, half the JSON arrives
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "uncertain_create"
    assert fake.created == 1 and fake.count("create") == 1


def test_create_429_and_connection_refused_are_resent(cloud_studio, fake):
    fake.inject("create", Fault(status=429, body={"error": {"code": "1302", "message": "并发数过高"}}))
    job = run_job(cloud_studio, t2v())
    assert job.status == "succeeded", job.error
    assert fake.created == 1 and fake.count("create") == 2


def test_truncated_download_is_retried(cloud_studio, fake):
    fake.inject("download", Fault(truncate=True, times=2))
    job = run_job(cloud_studio, t2v())
    assert_video(cloud_studio, job)
    assert fake.count("download") == 3


def test_expired_url_fails_clearly(cloud_studio, fake):
    fake.url_ttl = -1
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and job.error_code == "url_expired" and "expired" in job.error
    assert fake.count("download") == 1


def test_no_cancel_api_stops_polling_and_says_so(cloud_studio, fake, monkeypatch):
    monkeypatch.setenv("XIANYING_POLL_SCALE", "1")
    fake.plan = ["PROCESSING"]
    job = cloud_studio.service.submit(t2v(), LOCAL)
    wait_remote(cloud_studio, job.id)
    job = cloud_studio.service.cancel(job.id, LOCAL)
    assert job.status == "cancelled" and "may still" in job.info["cancel_note"]


# --- crash mid-create -----------------------------------------------------------------------
def _request(engine, job_id="b" * 32, **kw):
    from engines.base import EngineRequest

    return EngineRequest(job_id=job_id, prompt="山水", negative_prompt="", params=engine.Params(**kw),
                         workdir=engine.settings.staging_dir / job_id)


def test_restart_after_a_crash_mid_create_never_resends(workspace, fake):
    from app.settings import load_settings
    from engines.cloud.zhipu import ZhipuEngine

    engine = ZhipuEngine(load_settings(workspace))
    req = _request(engine)
    # the studio sent the create and died before the answer: the journal says "sending"
    engine.journal.save(req.job_id, state="sending", request_ref=f"xianying-{req.job_id}-1", generation=1)
    with pytest.raises(ProviderError) as err:
        engine.start(req)
    assert err.value.vendor_code == "uncertain_create" and f"xianying-{req.job_id}-1" in err.value.en
    assert fake.requests == []
    with pytest.raises(ProviderError):  # a plain Retry: still nothing sent
        engine.start(req)
    assert fake.requests == []
    engine.allow_resend(req.job_id)  # "Retry anyway": a new generation, a fresh key, one task
    task_id = engine.start(req)
    assert task_id in fake.tasks and fake.created == 1
    assert fake.tasks[task_id]["request_id"] == f"xianying-{req.job_id}-2"
    attempts = engine.journal.load(req.job_id)["attempts"]
    assert [a["outcome"] for a in attempts] == ["resume", "resume", "resend_requested", "sending", "created"]


def test_restart_with_a_journaled_task_id_sends_nothing(workspace, fake):
    from app.settings import load_settings
    from engines.cloud.zhipu import ZhipuEngine

    engine = ZhipuEngine(load_settings(workspace))
    req = _request(engine)
    engine.journal.save(req.job_id, state="created", remote_id="123-abc", request_id="x", generation=1)
    assert engine.start(req) == "123-abc" and fake.requests == []


def test_key_never_leaks(cloud_studio, fake, caplog):
    caplog.set_level(logging.DEBUG)
    ok = run_job(cloud_studio, t2v())
    fake.api_key = "wrong.key"
    bad = run_job(cloud_studio, t2v())
    assert ok.status == "succeeded" and bad.status == "failed"
    texts = [caplog.text, json.dumps(cloud_studio.service.status_dict(ok), ensure_ascii=False),
             json.dumps(cloud_studio.service.status_dict(bad), ensure_ascii=False)]
    texts.append((cloud_studio.settings.workspace / ok.output_dir / "job.json").read_text(encoding="utf-8"))
    for text in texts:
        assert KEY not in text and KEY.split(".")[1] not in text
    for db_file in cloud_studio.settings.workspace.glob("studio.db*"):
        assert KEY.encode() not in db_file.read_bytes()


def test_restart_while_polling_resumes_without_a_second_create(workspace, fake, monkeypatch):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    monkeypatch.setenv("XIANYING_POLL_SCALE", "1")
    fake.plan = ["PROCESSING"]
    first = Studio(load_settings(workspace))
    first.start()
    with db.connection_context():
        job_id = wait_remote(first, first.service.submit(t2v(), LOCAL).id).id
    first.stop()
    fake.plan = ["SUCCESS"]
    second = Studio(load_settings(workspace))
    counts = second.start()
    try:
        with db.connection_context():
            job = wait_job(second, job_id)
    finally:
        second.stop()
    assert counts["resumed"] == 1
    assert job.status == "succeeded", job.error
    assert fake.created == 1 and fake.count("create") == 1


def test_retry_after_a_failed_task_sends_a_new_request_id(cloud_studio, fake):
    fake.plan = ["PROCESSING", "FAIL"]
    job = run_job(cloud_studio, t2v())
    assert job.status == "failed" and fake.created == 1
    fake.plan = ["PROCESSING", "SUCCESS"]
    job = wait_job(cloud_studio, cloud_studio.service.retry(job.id, LOCAL).id)
    assert job.status == "succeeded", job.error
    assert [b["request_id"] for b in fake.bodies] == [f"xianying-{job.id}-1", f"xianying-{job.id}-2"]
