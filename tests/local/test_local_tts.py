"""``local-tts`` on a tiny random-weight Kokoro model loaded through the real sherpa-onnx code:
the contract, a job through the queue end to end, timings, MP3, cancel, bad folders, voices,
length limits and the input hash episodes reuse speech by."""

from __future__ import annotations

import wave

import pytest

from tests.conftest import install_weights, wait_for
from tests.tiny_speech import SAMPLE_RATE, SAMPLES_PER_TOKEN, SPEAKERS, build_tiny_kokoro
from app.access import LOCAL, Principal  # noqa: F401


@pytest.fixture(scope="session")
def tiny_kokoro_dir(tmp_path_factory):
    return build_tiny_kokoro(tmp_path_factory.mktemp("kokoro") / "local-tts")


@pytest.fixture
def speech_studio(workspace):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    st = Studio(load_settings(workspace))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


def engine_of(studio):
    return studio.service.engines["local-tts"]


def done(studio, job_id):
    def check():
        job = studio.service.get(job_id, LOCAL)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return wait_for(check, timeout=60)


def wav_seconds(path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_job_end_to_end_makes_a_timed_wav(speech_studio, tiny_kokoro_dir):
    install_weights(speech_studio.settings.workspace, "local-tts", tiny_kokoro_dir)
    info = {e["id"]: e for e in speech_studio.service.engines_info()}["local-tts"]
    assert info["available"] and info["tasks"] == ["tts"]
    assert {"narrator", "male", "female"} <= {v["id"] for v in info["voices"]}
    assert {"af_sol", "zm_009", "zf_003"} <= {v["id"] for v in info["voices"]}  # the model's own speakers too
    assert set(info["params_schema"]["properties"]) == {"text", "voice", "speed", "format"}

    text = "你好，仙人。剑来！hello world."
    job = speech_studio.service.submit({"engine": "local-tts", "params": {"text": text, "voice": "female"}}, LOCAL)
    assert job.lane == "io" and job.task == "tts"
    job = done(speech_studio, job.id)
    assert job.status == "succeeded", job.error
    out = job.outputs[0]
    path = speech_studio.settings.workspace / out["file"]
    assert out["kind"] == "audio" and path.suffix == ".wav"
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2)
    assert out["duration"] == pytest.approx(wav_seconds(path), abs=1e-3)
    timings = out["timings"]
    assert [t[2] for t in timings] == ["你好，仙人。", "剑来！", "hello world."]
    assert all(a[1] <= b[0] for a, b in zip(timings, timings[1:]))  # in order, never overlapping
    assert timings[0][0] == 0 and timings[-1][1] == pytest.approx(out["duration"], abs=0.01)
    # each sentence lasts a whole number of tokens of the tiny model (10 ms each): real model output
    for start, end, _ in timings:
        tokens = (end - start) * SAMPLE_RATE / SAMPLES_PER_TOKEN
        assert tokens == pytest.approx(round(tokens), abs=0.2) and tokens >= 3
    assert out["meta"]["voice"] == "zf_001"


def test_voices_pick_different_speakers_and_mp3(speech_studio, tiny_kokoro_dir, tmp_path):
    from engines.base import EngineRequest

    install_weights(speech_studio.settings.workspace, "local-tts", tiny_kokoro_dir)
    engine = engine_of(speech_studio)

    def say(voice, fmt="wav"):
        work = tmp_path / f"{voice}-{fmt}"
        work.mkdir()
        params = engine.Params(text="我是天下仙人。", voice=voice, format=fmt)
        return engine.run(EngineRequest("j", "", "", params, work), lambda *a, **k: None, lambda: False)[0]

    male, narrator = say("male"), say("narrator")
    assert male.meta["voice"] == "zm_009" and narrator.meta["voice"] == "zm_010"
    assert male.path.read_bytes() != narrator.path.read_bytes()  # another style vector, another sound
    assert say("af_sol").meta["voice"] == "af_sol"  # a native id of the model
    mp3 = say("male", "mp3")
    assert mp3.path.suffix == ".mp3" and mp3.path.read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    assert mp3.duration == pytest.approx(male.duration, abs=0.08)


def test_cancel_between_sentences_leaves_nothing(speech_studio, tiny_kokoro_dir, tmp_path):
    from core.errors import Cancelled
    from engines.base import EngineRequest

    install_weights(speech_studio.settings.workspace, "local-tts", tiny_kokoro_dir)
    engine = engine_of(speech_studio)
    steps = []
    work = tmp_path / "work"
    work.mkdir()
    params = engine.Params(text="你好。仙人。剑来。山上云。")
    with pytest.raises(Cancelled):
        engine.run(EngineRequest("j", "", "", params, work), lambda s, t, preview=None: steps.append(s),
                   lambda: len(steps) >= 2)
    assert steps == [0, 1] and not any(work.iterdir())
    # a queued job cancelled through the service never runs
    job = speech_studio.service.submit({"engine": "local-tts", "prompt": "仙人"}, LOCAL)
    job = speech_studio.service.cancel(job.id, LOCAL)
    assert done(speech_studio, job.id).status in ("cancelled", "succeeded")


def test_missing_weights_say_where_in_both_languages(speech_studio):
    from core.errors import NotAvailable

    info = {e["id"]: e for e in speech_studio.service.engines_info()}["local-tts"]
    assert not info["available"]
    assert "Settings → Models" in info["reason"] and "设置 → 模型" in info["reason_zh"]
    with pytest.raises(NotAvailable) as err:
        speech_studio.service.submit({"engine": "local-tts", "params": {"text": "你好"}}, LOCAL)
    assert "voices.bin" in err.value.en and "设置" in err.value.zh
    rows = {r["engine"]: r for r in __import__("engines.local.weights", fromlist=["models_report"])
            .models_report(speech_studio.service.engines)}
    assert rows["local-tts"]["present"] is False and "voices.bin" in rows["local-tts"]["missing"]


def test_a_broken_model_is_an_error_not_a_dead_process(speech_studio, tiny_kokoro_dir):
    folder = install_weights(speech_studio.settings.workspace, "local-tts", tiny_kokoro_dir)
    whole = (folder / "voices.bin").read_bytes()
    (folder / "voices.bin").write_bytes(whole[:-4])
    job = done(speech_studio, speech_studio.service.submit({"engine": "local-tts", "prompt": "你好"}, LOCAL).id)
    assert job.status == "failed" and "voices.bin" in job.error and "重新下载" in job.error_zh
    (folder / "voices.bin").write_bytes(whole)  # downloaded again: Retry runs the same job
    speech_studio.service.retry(job.id, LOCAL)
    job = wait_for(lambda: (lambda j: j if j.status in ("succeeded", "failed") else None)(
        speech_studio.service.get(job.id, LOCAL)), timeout=60)
    assert job.status == "succeeded" and job.params["text"] == "你好" and job.outputs[0]["duration"] > 0


def test_requests_are_checked_before_they_are_stored(speech_studio, tiny_kokoro_dir):
    from core.errors import ValidationError

    install_weights(speech_studio.settings.workspace, "local-tts", tiny_kokoro_dir)
    bad = [({"text": "你好", "voice": "nobody"}, "narrator"), ({"text": "字" * 2001}, "at most 2000"),
           ({"text": "   "}, "empty"), ({"text": "你好", "pitch": 2}, "unknown parameter"),
           ({"text": "你好", "speed": 3}, "speed")]
    for params, words in bad:
        with pytest.raises(ValidationError) as err:
            speech_studio.service.submit({"engine": "local-tts", "params": params}, LOCAL)
        assert words in err.value.en, err.value.en
    with pytest.raises(ValidationError, match="not images"):
        speech_studio.service.submit({"engine": "local-tts", "prompt": "你好",
                                      "image": "https://example.com/a.png"}, LOCAL)
    with pytest.raises(ValidationError, match="text: required"):
        speech_studio.service.submit({"engine": "local-tts", "params": {}}, LOCAL)


def test_speech_is_hashed_like_clips(speech_studio, tiny_kokoro_dir):
    from app.episode_steps import request_hash, row_hash

    install_weights(speech_studio.settings.workspace, "local-tts", tiny_kokoro_dir)
    service = speech_studio.service
    request = {"engine": "local-tts", "params": {"text": "你好，仙人。", "voice": "male"}, "project": "p"}
    job = done(speech_studio, service.submit(request, LOCAL).id)
    assert job.status == "succeeded"
    assert row_hash(service, job) == request_hash(service, request)
    assert request_hash(service, {**request, "params": {"text": "你好，仙人！", "voice": "male"}}) != \
        request_hash(service, request)
    assert request_hash(service, {**request, "params": {"text": "你好，仙人。", "voice": "female"}}) != \
        request_hash(service, request)


def test_tiny_model_loads_through_the_folder_checks(tiny_kokoro_dir):
    from engines.local.kokoro_files import KokoroFolder, onnx_metadata

    meta = KokoroFolder.scan(tiny_kokoro_dir).check()
    assert meta.speakers == list(SPEAKERS) and meta.sample_rate == SAMPLE_RATE and meta.version == 2
    assert onnx_metadata(tiny_kokoro_dir / "model.onnx")["model_type"] == "kokoro"


def test_the_queue_plays_a_finished_line(speech_studio, tiny_kokoro_dir):
    from app.ui.queue_view import table_html

    install_weights(speech_studio.settings.workspace, "local-tts", tiny_kokoro_dir)
    job = done(speech_studio, speech_studio.service.submit({"engine": "local-tts", "params": {"text": "山上云"}}, LOCAL).id)
    html = table_html([job], "zh")
    name = job.outputs[0]["file"].rsplit("/", 1)[-1]
    assert f"<audio controls preload='none' src='/files/{job.id}/{name}'>" in html and "山上云" in html


def test_download_from_the_hub_makes_it_speak(workspace, tiny_kokoro_dir, monkeypatch, tmp_path):
    """Settings → Models → Download for local-tts against the fake hub: only the model's files
    (the .onnx included, unlike for diffusers repos), voices.bin last, then a line is spoken."""
    import huggingface_hub.constants as hf_constants

    from engines.base import EngineRequest
    from engines.local.local_tts import HUB_ID
    from tests.local.fake_hub import FakeHub
    from tests.local.test_download import studio_parts

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    decoys = {"espeak-ng-data/en_dict": b"e" * 500, "dict/jieba.dict.utf8": b"j" * 500, "samples/0.wav": b"w" * 90,
              "lexicon-gb-en.txt": b"colour k a l", ".gitattributes": b"*.onnx filter=lfs"}
    with FakeHub() as hub:
        hub.add_folder(HUB_ID, tiny_kokoro_dir, decoys)
        _, engines, downloads = studio_parts(workspace, hub.url)
        engine = engines["local-tts"]
        assert not engine.available()[0] and downloads.targets()["local-tts"] == HUB_ID
        downloads.start("local-tts")
        row = downloads.wait("local-tts", 30)
        order = [h.path.rsplit("/", 1)[-1] for h in hub.hits(method="GET") if "/resolve/" in h.path]
    assert row["state"] == "done", row
    folder = workspace / "models" / "local-tts"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in tiny_kokoro_dir.iterdir())
    assert order[-1] == "voices.bin" and "model.onnx" in order
    assert engine.available()[0]
    work = tmp_path / "work"
    work.mkdir()
    out = engine.run(EngineRequest("j", "", "", engine.Params(text="你好"), work), lambda *a, **k: None,
                     lambda: False)[0]
    assert out.duration > 0 and out.path.is_file()
