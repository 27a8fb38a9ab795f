"""Volcengine Ark (Seedance) engine against the loopback fake."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from app.db import TERMINAL
from core.errors import ProviderError, ValidationError
from app.secrets import SecretStore
from app.settings import load_settings
from engines.base import EngineRequest, ImageInput
from engines.cloud.ark import ArkEngine, ArkParams, parse_prompt_flags, resolve_fields, task_state
from tests.cloud.fake_ark import API_KEY, FakeArk
from tests.cloud.fakeserver import Fault
from tests.conftest import wait_for
from app.access import LOCAL, Principal  # noqa: F401

JOB = "fedcba9876543210fedcba9876543210"
PRO = "doubao-seedance-1-0-pro-250528"


@pytest.fixture
def fake(monkeypatch):
    for name, value in {"XIANYING_POLL_SCALE": "0.01", "XIANYING_RETRY_INITIAL": "0.05",
                        "XIANYING_RETRY_MAX_WAIT": "0.2", "XIANYING_HTTP_TIMEOUT": "1.5"}.items():
        monkeypatch.setenv(name, value)
    with FakeArk() as server:
        monkeypatch.setenv("ARK_BASE_URL", server.base)
        monkeypatch.setenv("ARK_API_KEY", API_KEY)
        yield server


@pytest.fixture
def engine(workspace, fake):
    return ArkEngine(load_settings(workspace), SecretStore(workspace / "none.yaml"))


@pytest.fixture
def cloud_studio(workspace, fake):
    from app.db import db
    from app.studio import Studio

    st = Studio(load_settings(workspace))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


def request(tmp_path: Path, prompt: str = "a crane over a sea of clouds", images=(), **params) -> EngineRequest:
    return EngineRequest(job_id=JOB, prompt=prompt, negative_prompt="", params=ArkParams(**params),
                         workdir=tmp_path / "work", images=list(images))


def finish(studio, job_id: str, timeout: float = 30.0):
    return wait_for(lambda: (j := studio.service.get(job_id, LOCAL)).status in TERMINAL and j, timeout)


def png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (32, 24), (30, 200, 30)).save(path)
    return path


# --- seed 003's prompt flags ----------------------------------------------------------
def test_prompt_flags_are_parsed_into_fields():
    text, flags = parse_prompt_flags("仙鹤 --duration 5 --ratio 16:9 --rs 720p --seed 1 --wm false --cf true --x 2")
    assert text == "仙鹤 --x 2"
    assert flags == {"duration": 5, "ratio": "16:9", "resolution": "720p", "seed": 1, "watermark": False,
                     "camera_fixed": True}
    assert parse_prompt_flags("no flags -- here") == ("no flags -- here", {})
    with pytest.raises(ValidationError, match="--wm"):
        parse_prompt_flags("a --wm maybe")
    with pytest.raises(ValidationError, match="twice"):
        parse_prompt_flags("a --dur 5 --duration 10")


def test_explicit_params_and_flags_combine_or_conflict():
    text, fields = resolve_fields("cat --duration 5 --rs 720p", ArkParams(ratio="1:1", duration=5))
    assert text == "cat" and fields == {"ratio": "1:1", "duration": 5, "resolution": "720p"}
    with pytest.raises(ValidationError, match="duration"):
        resolve_fields("cat --duration 5", ArkParams(duration=10))
    with pytest.raises(ValidationError, match="seed"):
        resolve_fields("cat --seed 1", ArkParams(seed=2))
    with pytest.raises(ValidationError):
        resolve_fields("cat --rs 4k", ArkParams())


def test_params_accept_model_ids_and_endpoint_ids(engine, tmp_path):
    assert ArkParams(model="ep-20260129105436-445p4").model.startswith("ep-")
    with pytest.raises(Exception):
        ArkParams(model="doubao seedance 9!")
    with pytest.raises(Exception):
        ArkParams(seed=2**32)
    # an id missing from the model table is refused by check(), naming the table and the known ids
    with pytest.raises(ValidationError, match=r"engines/cloud/models/ark\.yaml.*doubao-seedance-2-0-260128"):
        engine.check(request(tmp_path, model="doubao-seedance-9"))


@pytest.mark.parametrize("model, images, words", [
    ("doubao-seedance-1-0-lite-t2v-250428", [ImageInput(role="first_frame", url="https://e.com/a.png")], "cannot do"),
    ("doubao-seedance-1-0-lite-i2v-250428", [], "cannot do"),
    ("doubao-seedance-1-0-pro-fast-251015", [ImageInput(role="first_frame", url="https://e.com/a.png"),
                                             ImageInput(role="last_frame", url="https://e.com/b.png")], "kf2v"),
])
def test_check_refuses_what_a_model_cannot_do(engine, fake, tmp_path, model, images, words):
    with pytest.raises(ValidationError, match=words):
        engine.check(request(tmp_path, images=images, model=model))
    assert fake.requests == []


def test_check_durations_and_empty_prompt(engine, tmp_path):
    with pytest.raises(ValidationError, match="duration 13"):
        engine.check(request(tmp_path, prompt="x --duration 13"))
    with pytest.raises(ValidationError, match="prompt"):
        engine.check(request(tmp_path, prompt="--duration 5"))
    engine.check(request(tmp_path, prompt="x --duration 15", model="doubao-seedance-2-0-260128"))


def test_create_body_roles_and_data_uri(engine, fake, tmp_path):
    first = ImageInput(role="first_frame", path=png(tmp_path / "a.png"))
    last = ImageInput(role="last_frame", url="https://example.com/last.png")
    req = request(tmp_path, prompt="仙鹤 --rs 1080p --wm false", images=[first, last], ratio="adaptive")
    task_id = engine.start(req)
    body = fake.tasks[task_id]["body"]
    assert body["content"][0] == {"type": "text", "text": "仙鹤"}
    assert body["content"][1]["role"] == "first_frame"
    assert body["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert body["content"][2] == {"type": "image_url", "image_url": {"url": "https://example.com/last.png"},
                                  "role": "last_frame"}
    assert body["resolution"] == "1080p" and body["watermark"] is False and body["ratio"] == "adaptive"
    assert isinstance(body["seed"], int) and body["seed"] >= 0  # a concrete seed is always sent
    assert fake.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"


def test_status_vocabulary():
    assert task_state({"status": "queued"}).status == "queued"
    assert task_state({"status": "running"}).status == "running"
    assert task_state({"status": "cancelled"}).status == "cancelled"
    expired = task_state({"status": "expired"})
    assert expired.status == "failed" and "expire" in expired.error.en
    ok = task_state({"status": "succeeded", "content": {"video_url": "http://x/v.mp4"}, "seed": 3,
                     "usage": {"completion_tokens": 10, "total_tokens": 10}})
    assert ok.urls == ["http://x/v.mp4"] and ok.info["usage"]["total_tokens"] == 10 and ok.info["seed"] == 3


# --- SDK cross-check -----------------------------------------------------------------
def test_official_sdk_requests_are_accepted_by_the_fake(fake, engine, tmp_path):
    ark = pytest.importorskip("volcenginesdkarkruntime", reason="volcengine-ark-runtime")
    client = ark.Ark(base_url=fake.base, api_key=API_KEY, max_retries=0)
    created = client.content_generation.tasks.create(
        model=PRO, content=[{"type": "text", "text": "a cat"},
                            {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}, "role": "first_frame"}],
        seed=5, ratio="16:9", duration=5, watermark=False)
    assert created.id.startswith("cgt-")
    sdk_req = fake.requests[-1]
    engine.start(request(tmp_path, prompt="a cat", images=[ImageInput(role="first_frame", url="https://e.com/a.png")],
                         seed=5, ratio="16:9", duration=5, watermark=False))
    mine = fake.requests[-1]
    assert (mine.method, mine.path) == (sdk_req.method, sdk_req.path)
    sdk_body = {k: v for k, v in sdk_req.json().items() if v is not None}
    assert mine.json() == sdk_body
    assert client.content_generation.tasks.get(task_id=created.id).status == "running"
    assert client.content_generation.tasks.list(page_size=10, model=PRO).total == 2


# --- create safety ---------------------------------------------------------------------
def test_start_twice_creates_one_task(engine, fake, tmp_path):
    req = request(tmp_path)
    first = engine.start(req)
    assert engine.start(req) == first  # the journal holds the task id
    engine.journal.save(JOB, state="sending", remote_id=None)  # died after sending, before the answer was noted
    assert engine.start(req) == first  # found by model + seed + time, not sent again
    assert fake.creates == 1 and fake.count("create") == 1 and fake.count("list") == 1


def test_lost_create_answer_is_recovered_not_repeated(engine, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.5")
    fake.slow_after_create = 1.0
    task_id = engine.start(request(tmp_path))
    assert task_id in fake.tasks and fake.creates == 1


def test_5xx_on_create_looks_before_sending_again(engine, fake, tmp_path):
    fake.inject("create", Fault(status=503, body={"error": {"code": "ServiceUnavailable", "message": "busy"}}))
    task_id = engine.start(request(tmp_path))
    assert task_id in fake.tasks and fake.creates == 1 and fake.count("list") == 1


def test_auth_failure_is_not_retried(engine, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("ARK_API_KEY", "ark-wrong-key-000000")
    with pytest.raises(ProviderError) as err:
        engine.start(request(tmp_path))
    assert err.value.http_status == 401 and not err.value.retryable and "ARK_API_KEY" in err.value.en
    assert "ark-wrong-key" not in err.value.en and fake.count("create") == 1


# --- end to end ------------------------------------------------------------------------
def test_t2v_end_to_end_with_prompt_flags(cloud_studio, fake, caplog):
    from core.media import probe

    caplog.set_level(logging.DEBUG)
    job = cloud_studio.service.submit({"engine": "ark", "prompt": "剑仙 --duration 5 --ratio 16:9 --rs 720p --seed 1",
                                       "params": {"model": PRO}}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "succeeded", job.error
    body = fake.tasks[job.remote_id]["body"]
    assert body["content"] == [{"type": "text", "text": "剑仙"}] and body["seed"] == 1 and body["duration"] == 5
    out = cloud_studio.settings.workspace / job.outputs[0]["file"]
    assert out.name.startswith("ark_") and probe(out)["codec"] == "h264"
    assert job.info["usage"]["total_tokens"] == 108900 and job.info["seed"] == 1
    record = (out.parent / "job.json").read_text(encoding="utf-8")
    row = json.dumps(cloud_studio.service.status_dict(job), ensure_ascii=False)
    assert API_KEY not in record and API_KEY not in row and API_KEY not in caplog.text


def test_i2v_end_to_end(cloud_studio, fake):
    img = png(cloud_studio.settings.workspace / "first.png")
    job = cloud_studio.service.submit({"engine": "ark", "prompt": "云海", "image": str(img),
                                       "params": {"model": "doubao-seedance-1-0-lite-i2v-250428"}}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "succeeded", job.error
    assert fake.tasks[job.remote_id]["body"]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("prompt, code, words", [
    ("[[fail]] 仙鹤", "InternalServiceError", "could not make the video"),
    ("[[nsfw-output]] 仙鹤", "OutputVideoSensitiveContentDetected", "moderation"),
    ("[[banned]] 仙鹤", "InputTextSensitiveContentDetected", "moderation"),
    ("[[expire]] 仙鹤", "expired", "expire"),
])
def test_failures_end_clearly(cloud_studio, fake, prompt, code, words):
    job = cloud_studio.service.submit({"engine": "ark", "prompt": prompt}, LOCAL)
    job = finish(cloud_studio, job.id)
    assert job.status == "failed" and job.error_code == code and words in job.error


def test_storms_slow_and_broken_answers_are_ridden_out(cloud_studio, fake):
    storm = {"error": {"code": "RateLimitExceeded.EndpointRPMExceeded", "message": "slow down"}}
    fake.inject("create", Fault(status=429, body=storm, times=2))
    fake.inject("get", Fault(status=500, body={"error": {"code": "InternalServiceError", "message": "oops"}}),
                Fault(bad_json=True), Fault(delay=2.0))
    fake.inject("download", Fault(truncate=True))
    job = cloud_studio.service.submit({"engine": "ark", "prompt": "山门"}, LOCAL)
    job = finish(cloud_studio, job.id, timeout=45)
    assert job.status == "succeeded", job.error
    assert fake.creates == 1 and fake.count("create") == 3 and fake.count("download") == 2


def test_expired_url_and_auth_failure_through_the_studio(cloud_studio, fake, monkeypatch):
    fake.url_ttl = -5
    job = finish(cloud_studio, cloud_studio.service.submit({"engine": "ark", "prompt": "古寺"}, LOCAL).id)
    assert job.status == "failed" and job.error_code == "url_expired"
    monkeypatch.setenv("ARK_API_KEY", "ark-wrong-key-000000")
    before = fake.count("create")
    job = finish(cloud_studio, cloud_studio.service.submit({"engine": "ark", "prompt": "古寺"}, LOCAL).id)
    assert job.status == "failed" and job.error_code == "AuthenticationError" and fake.count("create") == before + 1


def test_cancel_of_a_queued_task_reaches_ark(cloud_studio, fake):
    fake.hold_queued = True
    job = cloud_studio.service.submit({"engine": "ark", "prompt": "瀑布"}, LOCAL)
    job = wait_for(lambda: (j := cloud_studio.service.get(job.id, LOCAL)).remote_id and j)
    job = cloud_studio.service.cancel(job.id, LOCAL)
    assert job.status == "cancelled" and job.info["cancel_note"] == "Cancelled at the provider."
    assert fake.tasks[job.remote_id]["status"] == "cancelled" and fake.count("delete") == 1


def test_cancel_of_a_running_task_is_refused_politely(engine, fake, tmp_path):
    task_id = engine.start(request(tmp_path))
    fake.steps = 5
    assert engine.poll(task_id).status == "running"
    assert engine.cancel_remote(task_id) is False and fake.count("delete") == 0


def test_crash_mid_create_resumes_without_a_second_task(workspace, fake):
    from app.db import Job, db
    from app.studio import Studio

    st = Studio(load_settings(workspace))
    try:
        with db.connection_context():
            job = st.service.submit({"engine": "ark", "prompt": "重启之后"}, LOCAL)
            st.queue.hueys["io"].flush()
            Job.update(status="running", attempts=1, remote_phase="creating").where(Job.id == job.id).execute()
            engine = st.engines["ark"]
            engine.start(st.runner.request_for(Job.get_by_id(job.id)))
            engine.journal.save(job.id, state="sending", remote_id=None)  # killed after sending, before the answer
            st.start()
            job = finish(st, job.id)
    finally:
        st.stop()
    assert job.status == "succeeded", job.error
    assert fake.creates == 1 and fake.count("create") == 1
