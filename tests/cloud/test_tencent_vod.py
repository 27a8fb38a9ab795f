"""Tencent VOD AIGC engine against the loopback fake (TC3 verified, HTTP-200 errors, SessionId)."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from app.db import TERMINAL
from core.errors import ProviderError, ValidationError
from app.secrets import SecretStore
from app.settings import load_settings
from engines.base import EngineRequest, ImageInput
from engines.cloud.tencent_vod import TencentVodEngine, TencentVodParams, task_state, tc3_authorization
from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY, SUB_APP_ID, FakeTencent, error_fault
from tests.cloud.fakeserver import Fault
from tests.conftest import wait_for
from app.access import LOCAL, Principal  # noqa: F401

JOB = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def fake(monkeypatch):
    for name, value in {"XIANYING_POLL_SCALE": "0.01", "XIANYING_RETRY_INITIAL": "0.05",
                        "XIANYING_RETRY_MAX_WAIT": "0.2", "XIANYING_HTTP_TIMEOUT": "1.5"}.items():
        monkeypatch.setenv(name, value)
    with FakeTencent() as server:
        monkeypatch.setenv("TENCENTCLOUD_VOD_ENDPOINT", server.endpoint)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
        monkeypatch.setenv("TENCENTCLOUD_VOD_SUBAPPID", str(SUB_APP_ID))
        yield server


@pytest.fixture
def engine(workspace, fake):
    return TencentVodEngine(load_settings(workspace), SecretStore(workspace / "none.yaml"))


@pytest.fixture
def cloud_studio(workspace, fake):
    from app.db import db
    from app.studio import Studio

    st = Studio(load_settings(workspace))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


def request(tmp_path: Path, prompt: str = "一只白鹤飞过云海", images=(), **params) -> EngineRequest:
    return EngineRequest(job_id=JOB, prompt=prompt, negative_prompt="", params=TencentVodParams(**params),
                         workdir=tmp_path / "work", images=list(images))


def finish(studio, job_id: str, timeout: float = 30.0):
    return wait_for(lambda: (j := studio.service.get(job_id, LOCAL)).status in TERMINAL and j, timeout)


def png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 30, 30)).save(path)
    return path


# --- signing: the same bytes as the official SDK ---------------------------------------
def test_signature_matches_the_official_sdk_and_the_fake_accepts_it(fake):
    sdk = pytest.importorskip("tencentcloud.vod.v20180717.vod_client", reason="tencentcloud-sdk-python-vod")
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.vod.v20180717 import models

    client = sdk.VodClient(credential.Credential(SECRET_ID, SECRET_KEY), "",
                           ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=fake.url[7:])))
    req = models.CreateAigcVideoTaskRequest()
    req.from_json_string(json.dumps({"SubAppId": SUB_APP_ID, "ModelName": "Kling", "ModelVersion": "2.1",
                                     "Prompt": "仙鹤 over the clouds", "SessionId": "sdk-1"}))
    assert client.CreateAigcVideoTask(req).TaskId  # the fake verified the SDK's signature
    signed = fake.signatures[-1]
    mine = tc3_authorization(SECRET_ID, SECRET_KEY, host=signed["host"], body=signed["body"],
                             timestamp=signed["timestamp"])
    assert mine == signed["authorization"]
    assert tc3_authorization(SECRET_ID, SECRET_KEY + "x", host=signed["host"], body=signed["body"],
                             timestamp=signed["timestamp"]) != signed["authorization"]


def test_create_body_and_polling(engine, fake, tmp_path):
    img = ImageInput(role="first_frame", path=png(tmp_path / "a.png"))
    last = ImageInput(role="last_frame", url="https://example.com/last.png")
    req = request(tmp_path, images=[img, last], model="Kling", duration=5, resolution="1080p",
                  aspect_ratio="16:9", enhance_prompt=True, seed=7)
    engine.check(req)
    task_id = engine.start(req)
    body = fake.tasks[task_id]["body"]
    assert body["ModelName"] == "Kling" and body["ModelVersion"] == "2.1" and body["SubAppId"] == SUB_APP_ID
    assert body["SessionId"] == f"xianying-{JOB}" and body["Seed"] == 7 and body["EnhancePrompt"] == "Enabled"
    assert body["OutputConfig"] == {"StorageMode": "Temporary", "Duration": 5, "Resolution": "1080P",
                                    "AspectRatio": "16:9"}
    (first,) = body["FileInfos"]  # first + last frame: FileInfos holds the first, LastFrameUrl the last
    assert first["Type"] == "Base64" and first["Usage"] == "FirstFrame" and not first["Base64"].startswith("data:")
    assert base64.b64decode(first["Base64"]) == (tmp_path / "a.png").read_bytes()
    assert body["LastFrameUrl"] == "https://example.com/last.png"
    state = engine.poll(task_id, req)
    assert (state.status, state.raw_status, state.progress) == ("running", "PROCESSING", 50.0)
    state = engine.poll(task_id, req)
    assert state.status == "succeeded" and state.urls and state.info["video_seconds"] == 5


def test_status_vocabulary():
    assert task_state({"Status": "WAITING", "AigcVideoTask": {"Progress": 0}}).status == "queued"
    assert task_state({"Status": "PROCESSING", "AigcVideoTask": {"Progress": 40}}).progress == 40.0
    aborted = task_state({"Status": "ABORTED", "AigcVideoTask": {"ErrCode": 1, "ErrCodeExt": "TaskTimeout"}})
    assert aborted.status == "failed" and aborted.error.vendor_code == "TaskTimeout"
    empty = task_state({"Status": "FINISH", "AigcVideoTask": {"ErrCode": 0, "Output": {"FileInfos": []}}})
    assert empty.status == "failed"


@pytest.mark.parametrize("params, field", [
    ({"model": "Hailuo", "duration": 5}, "duration"),
    ({"model": "Hailuo", "aspect_ratio": "16:9"}, "aspect_ratio"),
    ({"model": "Kling", "model_version": "9.9"}, "model_version"),
    ({"model": "OS", "resolution": "1080P"}, "resolution"),
    ({"model": "GV", "duration": 10}, "duration"),
])
def test_check_refuses_values_before_any_network_call(engine, fake, tmp_path, params, field):
    with pytest.raises(ValidationError, match=field):
        engine.check(request(tmp_path, **params))
    assert fake.requests == []


def test_check_sizes_and_frames(engine, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (11 * 2**20))
    with pytest.raises(ValidationError, match="10 MB"):
        engine.check(request(tmp_path, images=[ImageInput(role="first_frame", path=big)]))
    with pytest.raises(ValidationError, match="first frame"):
        engine.check(request(tmp_path, images=[ImageInput(role="last_frame", url="https://e.com/x.png")]))
    with pytest.raises(ValidationError, match="1000"):
        engine.check(request(tmp_path, prompt="x" * 1001))


def test_unavailable_without_keys(workspace, monkeypatch):
    monkeypatch.delenv("TENCENTCLOUD_SECRET_KEY", raising=False)
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID", raising=False)
    ok, reason = TencentVodEngine(load_settings(workspace), SecretStore(workspace / "none.yaml")).available()
    assert not ok and "TENCENTCLOUD_SECRET_ID" in reason and "TENCENTCLOUD_SECRET_KEY" in reason


# --- crash safety of create ---------------------------------------------------------
def test_start_twice_creates_one_task(engine, fake, tmp_path):
    req = request(tmp_path)
    first = engine.start(req)
    assert engine.start(req) == first  # the journal remembered the task
    engine.journal.clear(JOB)  # crash before the note was written: SessionId dedupe + lookup
    assert engine.start(req) == first
    assert fake.creates == 1 and fake.count("DescribeTasks") == 1


def test_lost_create_answer_is_recovered_not_repeated(engine, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.5")
    fake.slow_after_create = 1.0  # the task is made, the answer comes too late
    task_id = engine.start(request(tmp_path))
    assert fake.creates == 1 and task_id in fake.tasks


def test_retry_of_a_failed_job_makes_a_new_task(engine, fake, tmp_path):
    req = request(tmp_path, prompt="[[fail]] 仙人")
    first = engine.start(req)
    assert engine.poll(first, req).status == "running" and engine.poll(first, req).status == "failed"
    second = engine.start(req)
    assert second != first and fake.creates == 2
    assert fake.tasks[second]["body"]["SessionId"] == f"xianying-{JOB}-2"


def test_auth_failure_is_not_retried(engine, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "wrong-key-123456")
    with pytest.raises(ProviderError) as err:
        engine.start(request(tmp_path))
    assert err.value.vendor_code == "AuthFailure.SignatureFailure" and not err.value.retryable
    assert "TENCENTCLOUD_SECRET_KEY" in err.value.en and "wrong-key" not in err.value.en
    assert fake.count("CreateAigcVideoTask") == 1


# --- end to end through the studio ---------------------------------------------------
def test_t2v_end_to_end(cloud_studio, fake, caplog):
    from core.media import probe

    caplog.set_level(logging.DEBUG)
    job = cloud_studio.service.submit({"engine": "tencent-vod", "prompt": "剑仙御剑飞行",
                                       "params": {"model": "Hailuo", "model_version": "02", "duration": 6}}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "succeeded", job.error
    out = cloud_studio.settings.workspace / job.outputs[0]["file"]
    assert out.name.startswith("tencent-vod_") and out.suffix == ".mp4"
    info = probe(out)
    assert info["codec"] == "h264" and info["frames"] == 8
    assert (out.parent / job.outputs[0]["thumbnail"].rsplit("/", 1)[1]).exists()
    assert job.info["video_seconds"] == 6 and job.remote_id in fake.tasks and fake.creates == 1
    record = (out.parent / "job.json").read_text(encoding="utf-8")
    row = json.dumps(cloud_studio.service.status_dict(job), ensure_ascii=False) + json.dumps(job.info)
    for secret in (SECRET_KEY, SECRET_ID):
        assert secret not in record and secret not in row and secret not in caplog.text


def test_i2v_end_to_end_with_uploaded_image(cloud_studio, fake, tmp_path):
    img = png(cloud_studio.settings.workspace / "first.png")
    job = cloud_studio.service.submit({"engine": "tencent-vod", "prompt": "云雾缭绕", "image": str(img),
                                       "params": {"model": "Vidu", "model_version": "q2", "duration": 4}}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "succeeded", job.error
    info = fake.tasks[job.remote_id]["body"]["FileInfos"][0]
    assert info["Type"] == "Base64" and base64.b64decode(info["Base64"]) == img.read_bytes()


@pytest.mark.parametrize("prompt, code, words", [
    ("[[fail]] 仙鹤", "ModelGenerateFailed", "could not make the video"),
    ("[[nsfw-output]] 仙鹤", "ContentModerationFailed", "moderation"),
    ("[[banned]] 仙鹤", "InvalidParameter.ViolationContent", "moderation"),
])
def test_failures_end_clearly(cloud_studio, fake, prompt, code, words):
    job = cloud_studio.service.submit({"engine": "tencent-vod", "prompt": prompt, "params": {"model": "Hailuo"}}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "failed" and job.error_code == code and words in job.error and job.error_zh


def test_storms_slow_and_broken_answers_are_ridden_out(cloud_studio, fake):
    fake.inject("CreateAigcVideoTask", error_fault("RequestLimitExceeded", "too many", times=2))
    fake.inject("DescribeTaskDetail", Fault(status=502, body="bad gateway"), Fault(bad_json=True),
                Fault(delay=2.0), error_fault("InternalError"))
    fake.inject("download", Fault(truncate=True))
    job = cloud_studio.service.submit({"engine": "tencent-vod", "prompt": "山门", "params": {"model": "OS"}}, LOCAL)
    job = finish(cloud_studio, job.id, timeout=45)
    assert job.status == "succeeded", job.error
    assert fake.creates == 1 and fake.count("CreateAigcVideoTask") == 3 and fake.count("download") == 2


def test_auth_failure_and_expired_url_through_the_studio(cloud_studio, fake, monkeypatch):
    fake.url_ttl = -5  # links are already expired when handed out
    job = cloud_studio.service.submit({"engine": "tencent-vod", "prompt": "古寺", "params": {"model": "GV"}}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "failed" and job.error_code == "url_expired" and "expired" in job.error
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDunknown0000000000")
    before = fake.count("CreateAigcVideoTask")
    job = cloud_studio.service.submit({"engine": "tencent-vod", "prompt": "古寺", "params": {"model": "GV"}}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "failed" and job.error_code == "AuthFailure.SecretIdNotFound"
    assert fake.count("CreateAigcVideoTask") == before + 1


def test_crash_mid_create_resumes_without_a_second_task(workspace, fake):
    """The worker that sent the create died before committing the task id; restart finishes the job."""
    from app.db import Job, db
    from app.studio import Studio

    st = Studio(load_settings(workspace))  # not started: the submitted step waits in the queue
    try:
        with db.connection_context():
            job = st.service.submit({"engine": "tencent-vod", "prompt": "重启之后", "params": {"model": "Hailuo"}}, LOCAL)
            st.queue.hueys["io"].flush()  # the step was taken by the worker that died
            Job.update(status="running", attempts=1, remote_phase="creating").where(Job.id == job.id).execute()
            st.engines["tencent-vod"].start(st.runner.request_for(Job.get_by_id(job.id)))  # reached Tencent, then kill -9
            st.start()
            job = finish(st, job.id)
    finally:
        st.stop()
    assert job.status == "succeeded", job.error
    assert fake.creates == 1 and fake.count("CreateAigcVideoTask") == 1
