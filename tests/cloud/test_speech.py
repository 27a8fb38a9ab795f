"""The cloud speech engines against loopback fakes of DashScope Qwen-TTS and Tencent TextToVoice:
jobs end to end through the queue, the audio's duration and timings, speed, format, usage,
errors in both languages with no secret in them, cancel, and no second bill after a restart."""

from __future__ import annotations

import wave

import pytest

from tests.cloud.fake_speech import API_KEY, SECONDS_PER_CHAR, FakeQwenTts, FakeTencentTts
from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY
from tests.cloud.helpers import run_job, wait_job
from app.access import LOCAL, Principal  # noqa: F401


@pytest.fixture
def qwen(monkeypatch):
    with FakeQwenTts() as fake:
        monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", fake.base)
        monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)
        yield fake


@pytest.fixture
def tencent(monkeypatch):
    with FakeTencentTts() as fake:
        monkeypatch.setenv("TENCENTCLOUD_TTS_ENDPOINT", fake.url)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", SECRET_ID)
        monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
        yield fake


def audio_of(studio, job) -> tuple[dict, object]:
    assert job.status == "succeeded", job.error
    out = job.outputs[0]
    return out, studio.settings.workspace / out["file"]


def wav_seconds(path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_qwen_tts_job_end_to_end(qwen, cloud_studio):
    from app.usage import ledger

    info = {e["id"]: e for e in cloud_studio.service.engines_info()}
    assert {"narrator", "male", "female", "Cherry"} <= {v["id"] for v in info["dashscope-tts"]["voices"]}
    job = run_job(cloud_studio, {"engine": "dashscope-tts", "params": {"text": "你好，仙人。", "voice": "female"}})
    out, path = audio_of(cloud_studio, job)
    assert out["kind"] == "audio" and path.suffix == ".wav"
    assert out["duration"] == pytest.approx(wav_seconds(path), abs=1e-3)
    assert out["duration"] == pytest.approx(4 * SECONDS_PER_CHAR, abs=0.01)  # 你好仙人: four spoken characters
    sent = qwen.requests[0].json()
    assert sent == {"model": "qwen3-tts-flash", "input": {"text": "你好，仙人。", "voice": "Cherry",
                                                          "language_type": "Auto"}}
    assert qwen.calls == 1 and job.remote_id and job.info["usage"] == {"characters": 6}
    total = ledger({"engine": "dashscope-tts"})["totals"][0]
    assert (total["jobs"], total["count"], total["raw"]) == (1, 1, {"characters": 6})
    assert not list((cloud_studio.settings.workspace / "cloud" / "dashscope-tts").glob("*"))  # journal cleared


def test_qwen_tts_speed_format_and_model(qwen, cloud_studio):
    fast = run_job(cloud_studio, {"engine": "dashscope-tts", "params": {"text": "剑来山上云", "speed": 1.5}})
    out, _ = audio_of(cloud_studio, fast)
    assert out["duration"] == pytest.approx(5 * SECONDS_PER_CHAR / 1.5, abs=0.03)
    mp3 = run_job(cloud_studio, {"engine": "dashscope-tts", "params": {"text": "剑来", "format": "mp3",
                                                                       "model": "qwen-tts", "voice": "Ethan"}})
    out, path = audio_of(cloud_studio, mp3)
    assert path.suffix == ".mp3" and out["duration"] == pytest.approx(2 * SECONDS_PER_CHAR, abs=0.06)
    assert "language_type" not in qwen.requests[-2].json()["input"]  # qwen-tts has none
    assert mp3.info["usage"]["total_tokens"] == 102


def test_qwen_tts_errors_are_clear_and_keyless(qwen, cloud_studio, monkeypatch):
    from core.errors import NotAvailable, ValidationError

    banned = run_job(cloud_studio, {"engine": "dashscope-tts", "params": {"text": "[[banned]] 你好"}})
    assert banned.status == "failed" and "content check" in banned.error and "审核" in banned.error_zh
    with pytest.raises(ValidationError, match="no voice 'Nobody'"):
        cloud_studio.service.submit({"engine": "dashscope-tts", "params": {"text": "你好", "voice": "Nobody"}}, LOCAL)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong-key-000")
    wrong = run_job(cloud_studio, {"engine": "dashscope-tts", "params": {"text": "你好"}})
    assert wrong.status == "failed" and "DASHSCOPE_API_KEY" in wrong.error and "sk-wrong" not in wrong.error
    monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)  # the person fixes the key and presses Retry
    calls = qwen.calls
    cloud_studio.service.retry(wrong.id, LOCAL)
    retried = wait_job(cloud_studio, wrong.id)
    assert retried.status == "succeeded" and retried.outputs[0]["kind"] == "audio" and qwen.calls == calls + 1
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    with pytest.raises(NotAvailable) as err:
        cloud_studio.service.submit({"engine": "dashscope-tts", "params": {"text": "你好"}}, LOCAL)
    assert "DASHSCOPE_API_KEY" in err.value.en and "服务商密钥" in err.value.zh


def test_tencent_tts_keeps_per_character_timings(tencent, cloud_studio):
    info = {e["id"]: e for e in cloud_studio.service.engines_info()}["tencent-tts"]
    assert {"narrator", "male", "female", "101001"} <= {v["id"] for v in info["voices"]}
    job = run_job(cloud_studio, {"engine": "tencent-tts",
                                 "params": {"text": "仙人，剑来。", "voice": "male", "speed": 1.5}})
    out, path = audio_of(cloud_studio, job)
    body = tencent.bodies[0]
    assert (body["VoiceType"], body["Speed"], body["Codec"], body["EnableSubtitle"]) == (101004, 2.0, "wav", True)
    assert body["SessionId"] and tencent.calls == 1
    assert [t[2] for t in out["timings"]] == ["仙", "人", "剑", "来"]
    step = SECONDS_PER_CHAR / 1.5
    assert out["timings"][1][:2] == pytest.approx([step, 2 * step], abs=0.002)
    assert out["duration"] == pytest.approx(wav_seconds(path), abs=1e-3)
    assert out["duration"] == pytest.approx(out["timings"][-1][1], abs=0.01)
    assert job.info["usage"] == {"characters": 6}
    mp3 = run_job(cloud_studio, {"engine": "tencent-tts", "params": {"text": "仙人", "format": "mp3"}})
    out, path = audio_of(cloud_studio, mp3)
    assert path.suffix == ".mp3" and out["duration"] == pytest.approx(2 * SECONDS_PER_CHAR, abs=0.06)


def test_tencent_tts_errors(tencent, cloud_studio, monkeypatch):
    from core.errors import NotAvailable, ValidationError

    with pytest.raises(ValidationError) as err:
        cloud_studio.service.submit({"engine": "tencent-tts", "params": {"text": "字" * 151}}, LOCAL)
    assert "at most 150" in err.value.en and "150" in err.value.zh
    unknown = run_job(cloud_studio, {"engine": "tencent-tts", "params": {"text": "你好", "voice": "999999"}})
    assert unknown.status == "failed" and "VoiceType" in unknown.error
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "wrong-secret-key")
    wrong = run_job(cloud_studio, {"engine": "tencent-tts", "params": {"text": "你好"}})
    assert wrong.status == "failed" and "SignatureFailure" in wrong.error and "wrong-secret" not in wrong.error
    assert "Tencent Cloud TTS" in wrong.error and "密钥" in wrong.error_zh
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID")
    with pytest.raises(NotAvailable, match="TENCENTCLOUD_SECRET_ID"):
        cloud_studio.service.submit({"engine": "tencent-tts", "params": {"text": "你好"}}, LOCAL)


def test_cancel_while_the_vendor_speaks(qwen, cloud_studio):
    qwen.latency = 1.0
    job = cloud_studio.service.submit({"engine": "dashscope-tts", "params": {"text": "你好"}}, LOCAL)
    wait_job(cloud_studio, job.id, statuses=("running",))
    cloud_studio.service.cancel(job.id, LOCAL)
    job = wait_job(cloud_studio, job.id)
    assert job.status == "cancelled" and not job.outputs


def test_a_restart_after_the_call_does_not_pay_twice(tencent, cloud_studio, tmp_path):
    from engines.base import EngineRequest

    engine = cloud_studio.service.engines["tencent-tts"]
    request = EngineRequest("a" * 32, "", "", engine.Params(text="仙人"), tmp_path)
    first = engine.start(request)
    assert engine.start(request) == first and tencent.calls == 1  # the studio stopped before storing the id
    assert engine.poll(first, request).status == "succeeded"
    out = engine.collect(engine.poll(first, request), request)[0]
    assert out.duration == pytest.approx(2 * SECONDS_PER_CHAR, abs=0.01) and out.path.parent == tmp_path
