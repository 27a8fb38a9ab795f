"""Speech inside the episode: every narration and dialogue line is a ``tts`` step job of the episode,
reused by its input hash like a clip; the stitch waits for all of them and places them. Runs the real
queue with the loopback DashScope for clips and the tiny random-weight Kokoro (``local-tts``) for speech."""

from __future__ import annotations

import json

import pytest

from app.access import LOCAL
from app.db import Job
from app.episodes import EpisodeService
from core.errors import NotAvailable, ProfileError, ValidationError
from profiles.plan import timeline
from tests.conftest import wait_for
from tests.projects.conftest import write_project
from tests.projects.synth import decode_audio, probe_av, rms_db
from tests.tiny_speech import build_tiny_kokoro, teach_words

TimingError = timeline.TimingError  # (the timeline module moves between app/ and profiles/)

TERMINAL = ("succeeded", "failed", "cancelled")
PROJECT = """\
title: 说话 Speech test
fps: 8
resolution: 64x48
transition: crossfade
transition_duration: 0.25
default_engine: dashscope
engine_params:
  dashscope: {prompt_extend: false}
narrator_voice: {engine: local-tts, voice: narrator}
"""
CHARACTERS = """\
characters:
  hanli:
    name: 韩立 Han Li
    voice: {engine: local-tts, voice: male, speed: 1.2}
  wan:
    name: 南宫婉
"""
SCENES = """\
scenes:
  - id: a
    prompt: a sea of clouds
    duration: 1
    narration: 仙界之上，云海翻涌。
    lines:
      - {character: hanli, text: 这是哪里？}
  - {id: b, prompt: a crane over the clouds, duration: 1}
  - id: c
    prompt: a sword in the sky
    duration: 1
    lines:
      - {character: wan, text: 韩立，你来了。}
      - {character: hanli, text: 剑来！, at: 0.5}
"""
SCRIPT = ["仙界之上，云海翻涌。", "这是哪里？", "韩立，你来了。", "剑来！", "剑去！", "云海", "仙人"]


@pytest.fixture
def speech_studio(workspace, fake_dashscope):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    teach_words(build_tiny_kokoro(workspace / "models" / "local-tts"), SCRIPT)
    st = Studio(load_settings(workspace))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


def finished(studio, job_id, timeout=150.0):
    return wait_for(lambda: (j := studio.service.get(job_id, LOCAL)).status in TERMINAL and j, timeout=timeout)


def synthesised() -> int:
    """How many times the voice engine ran: every attempt of every local-tts job."""
    return sum(j.attempts for j in Job.select().where(Job.engine == "local-tts"))


def test_every_line_is_a_step_the_stitch_waits_for_and_an_edit_resynthesises_one_line(speech_studio, fake_dashscope):
    st = speech_studio
    ws = st.settings.workspace
    write_project(st.settings.projects_dir, "talk", project=PROJECT, characters=CHARACTERS, scenes=SCENES, face=False)
    episodes = EpisodeService(st.service)

    # the plan names every line, its engine and voice, before anything runs
    plan = {s.scene: s for s in episodes.plan("talk").scenes}
    assert [x.step for x in plan["a"].steps] == ["clip", "tts0", "tts1"]
    assert [x.step for x in plan["b"].steps] == ["clip"] and [x.step for x in plan["c"].steps] == ["clip", "tts0", "tts1"]
    tts = plan["a"].steps[2].request
    assert tts == {"engine": "local-tts", "project": "talk", "prompt": "这是哪里？",
                   "params": {"text": "这是哪里？", "voice": "male", "speed": 1.2, "format": "wav"}}
    assert plan["c"].steps[1].request["params"]["voice"] == "narrator"  # wan has no voice: the narrator's
    status = {s["id"]: s for s in episodes.project_status("talk", LOCAL)["scenes"]}
    assert status["a"]["steps"] == ["clip: dashscope", "tts0: local-tts", "tts1: local-tts"]
    assert [(x["speaker"], x["engine"], x["voice"], x["cached"]) for x in status["a"]["speech"]] == [
        ("narrator", "local-tts", "narrator", False), ("hanli", "local-tts", "male", False)]

    parent = finished(st, episodes.render("talk", LOCAL).id)
    assert parent.status == "succeeded", (parent.error, parent.message)
    kids = list(Job.select().where(Job.parent == parent.id))
    speech = [k for k in kids if k.engine == "local-tts"]
    assert len(speech) == 4 and all(k.task == "tts" and k.source == "project" and k.project == "talk" for k in speech)
    assert synthesised() == 4
    stitch = next(k for k in kids if k.engine == "stitch")
    assert max(k.finished_at for k in speech) <= stitch.started_at  # the stitch waited for every line
    lines = stitch.request["speech"]
    assert [u["text"] for u in lines["a"]] == ["仙界之上，云海翻涌。", "这是哪里？"] and "b" not in lines
    assert [(u["speaker"], u["at"]) for u in lines["c"]] == [("wan", None), ("hanli", 0.5)]

    # the MP4 speaks where the lines are, its subtitles come from the script
    render = ws / parent.outputs[0]["file"]
    info = probe_av(render)
    assert info["audio"]["codec"] == "aac" and abs(info["audio"]["seconds"] - info["video"]["frames"] / 8) <= 1 / 8
    side = json.loads(render.with_suffix(".json").read_text(encoding="utf-8"))
    assert side["subtitles"]["cues"] == 4 and "韩立，你来了" in (ws / side["subtitles"]["srt"]).read_text("utf-8")
    x = decode_audio(render)
    for placed in side["timeline"]["speech"]:
        assert rms_db(x, placed["start"] + 0.02, placed["end"] - 0.02) > -35, placed
    b = next(s for s in side["timeline"]["scenes"] if s["scene"] == "b")
    assert rms_db(x, b["start"] + 0.3, b["start"] + b["duration"] - 0.3) < -60  # nobody speaks in b
    steps = {(sc["scene"], s["step"]): s for sc in side["scenes"] for s in sc["steps"]}
    assert steps[("a", "tts1")]["engine"] == "local-tts" and steps[("a", "tts1")]["output"].endswith(".wav")

    # one line edited: that line alone is synthesised again; everything else is reused
    episodes.store.edit_scenes("talk", lambda scenes: [
        {**s, "lines": [{"character": "hanli", "text": "剑去！", "at": 0.5} if ln["text"] == "剑来！" else ln
                        for ln in s.get("lines", [])]} for s in scenes])
    cached = {(s["id"], x["step"]): x["cached"] for s in episodes.project_status("talk", LOCAL)["scenes"]
              for x in s["speech"]}
    assert cached == {("a", "tts0"): True, ("a", "tts1"): True, ("c", "tts0"): True, ("c", "tts1"): False}
    second = finished(st, episodes.render("talk", LOCAL).id)
    assert second.status == "succeeded", second.error
    new = [k for k in Job.select().where(Job.parent == second.id)]
    assert sorted(k.engine for k in new) == ["local-tts", "stitch"]
    assert next(k for k in new if k.engine == "local-tts").params["text"] == "剑去！"
    assert synthesised() == 5 and fake_dashscope.count("create") == 3
    state = Job.get_by_id(second.id).info["episode"]["scenes"]
    assert [state[s][t]["reused"] for s, t in (("a", "tts0"), ("a", "tts1"), ("c", "tts0"), ("c", "tts1"))] == [
        True, True, True, False]


def test_a_line_previewed_in_the_projects_tab_is_made_once_and_the_render_reuses_it(speech_studio):
    from app.episode_steps import speech_job
    from profiles.voices import speech_lines, speech_request

    st = speech_studio
    write_project(st.settings.projects_dir, "talk", project=PROJECT, characters=CHARACTERS, scenes=SCENES, face=False)
    episodes = EpisodeService(st.service)
    project = episodes.store.get("talk")
    line = speech_lines(project, project.scene("a"))[1]
    request = speech_request("talk", line)
    first, reused = speech_job(st.service, LOCAL, request)
    again, reused_again = speech_job(st.service, LOCAL, request)  # pressed twice, even before it finished
    assert not reused and reused_again and again.id == first.id
    done = finished(st, first.id)
    assert done.status == "succeeded" and done.outputs[0]["kind"] == "audio"
    assert speech_job(st.service, LOCAL, request) == (Job.get_by_id(first.id), True)
    assert synthesised() == 1
    parent = finished(st, episodes.render("talk", LOCAL, scenes=["a"]).id)
    assert parent.status == "succeeded", parent.error
    record = parent.info["episode"]["scenes"]["a"]["tts1"]
    assert record == {**record, "job": first.id, "reused": True} and synthesised() == 2  # only the narration ran


def test_speech_is_refused_up_front_with_the_fix(speech_studio, monkeypatch):
    st = speech_studio
    folder = write_project(st.settings.projects_dir, "talk", project=PROJECT, characters=CHARACTERS, scenes=SCENES,
                           face=False)
    episodes = EpisodeService(st.service)
    before = Job.select().count()

    def refused(kind, project=PROJECT, characters=CHARACTERS):
        (folder / "project.yaml").write_text(project, encoding="utf-8")
        (folder / "characters.yaml").write_text(characters, encoding="utf-8")
        with pytest.raises(kind) as err:
            episodes.render("talk", LOCAL)
        assert err.value.zh and err.value.zh != err.value.en
        status = episodes.project_status("talk", LOCAL)
        scenes = {s["id"]: s for s in status["scenes"]}
        assert scenes["b"]["plan_error"] is None  # b has no speech
        assert (status["timing_error"] if kind is TimingError else scenes["a"]["plan_error"]) == err.value.en
        return err.value.en

    # the voice engine is not available (no Tencent keys here)
    monkeypatch.delenv("TENCENTCLOUD_SECRET_ID", raising=False)
    monkeypatch.delenv("TENCENTCLOUD_SECRET_KEY", raising=False)
    en = refused(NotAvailable, project=PROJECT.replace("engine: local-tts, voice: narrator",
                                                       "engine: tencent-tts, voice: narrator"))
    assert "Scene 'a' (the narration) needs the engine tencent-tts" in en and "narrator_voice" in en
    en = refused(ProfileError, characters=CHARACTERS.replace("engine: local-tts, voice: male", "engine: dashscope, voice: x"))
    assert "characters.yaml → characters.hanli.voice: dashscope is not a speech engine" in en
    en = refused(ValidationError, characters=CHARACTERS.replace("voice: male", "voice: nobody"))
    assert "Scene 'a', line 1 (hanli) on local-tts" in en and "characters.yaml → characters.hanli.voice" in en
    en = refused(TimingError, project=PROJECT + "timing: fixed\n" + "speech_padding: 0\n")
    assert "scene 'a' has" in en and "timing: voice" in en
    assert Job.select().count() == before  # nothing was queued


def test_the_weights_missing_names_settings(workspace, fake_dashscope):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    st = Studio(load_settings(workspace))
    with db.connection_context():
        write_project(st.settings.projects_dir, "talk", project=PROJECT, characters=CHARACTERS, scenes=SCENES,
                      face=False)
        with pytest.raises(NotAvailable) as err:
            EpisodeService(st.service).plan("talk", scenes=["c"])
    assert "local-tts" in err.value.en and "Settings" in err.value.en and "narrator_voice" in err.value.en


def test_voice_timing_counts_the_estimated_speech_in_the_episode_length(speech_studio):
    st = speech_studio
    long_line = "仙界之上，云海翻涌。" * 4
    write_project(st.settings.projects_dir, "talk", project=PROJECT, characters=CHARACTERS, face=False,
                  scenes=SCENES.replace("narration: 仙界之上，云海翻涌。", f"narration: {long_line}"))
    plan = EpisodeService(st.service).plan("talk")
    assert plan.duration > 3 + plan.scenes[0].speech[0]["estimate"] - 1  # scene a grows to its speech
    silent = EpisodeService(st.service).plan("talk", scenes=["b"])
    assert silent.duration == 1.0
