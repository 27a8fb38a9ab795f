"""The Projects tab's speech editing, called as the browser's events call it (the handlers of the built
app, with a caller): narration and dialogue saved to scenes.yaml (strictly parsed), a line previewed on
the tiny Kokoro once and then played from cache, a character's voice, the project's sound settings and
music upload — and none of it for someone else's project."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import gradio as gr
import pytest
import yaml

from app.access import SCOPE_KEY, Principal
from app.db import Job
from tests.conftest import wait_for
from tests.projects.conftest import write_project
from tests.projects.synth import make_music
from tests.projects.test_episode_speech import CHARACTERS, PROJECT, SCENES, SCRIPT
from tests.tiny_speech import build_tiny_kokoro, teach_words

ALICE, BOB = Principal(user="alice"), Principal(user="bob")


@pytest.fixture
def ui(workspace):
    from app.db import db
    from app.server import create_app
    from app.settings import load_settings
    from app.studio import Studio

    teach_words(build_tiny_kokoro(workspace / "models" / "local-tts"), SCRIPT + ["我还活着？"])
    st = Studio(load_settings(workspace))
    app = create_app(st, manage_studio=False)
    st.start()
    with db.connection_context():
        write_project(st.settings.projects_dir, "talk", project=PROJECT, characters=CHARACTERS, scenes=SCENES,
                      face=False)
        from app.episodes import EpisodeService

        EpisodeService(st.service).access.set_owner("talk", ALICE)
        yield SimpleNamespace(studio=st, app=app, folder=st.settings.projects_dir / "talk")
    st.stop()


def handler(ui, module: str, name: str, owner: str | None = None):
    for block_fn in ui.app.state.demo.fns.values():
        fn = block_fn.fn
        raw = inspect.unwrap(fn) if fn is not None else None
        if raw is not None and raw.__module__ == f"app.ui.{module}" and raw.__qualname__.split("<locals>.")[-1] == name \
                and (owner is None or raw.__qualname__.startswith(owner)):
            return fn  # as Gradio calls it: access decision and readable errors included
    raise AssertionError(f"no handler {module}.{name}")


def as_(principal):
    return SimpleNamespace(scope={SCOPE_KEY: principal}, headers={})


def yaml_of(ui, name):
    return yaml.safe_load((ui.folder / name).read_text(encoding="utf-8"))


def test_scene_speech_is_edited_strictly_and_each_line_previews_once(ui):
    save = handler(ui, "projects_edit", "do_save", owner="build_scenes")
    form = ["a", "", 1.0, None, "a sea of clouds", [], "", "", "", ""]
    save("talk", "a", *form, "云海翻涌。", "hanli: 这是哪里？\n韩立 @0.5：我还活着？", request=as_(ALICE))
    scene = yaml_of(ui, "scenes.yaml")["scenes"][0]
    assert scene["narration"] == "云海翻涌。"
    assert scene["lines"] == [{"character": "hanli", "text": "这是哪里？"}, {"character": "hanli", "text": "我还活着？",
                                                                          "at": 0.5}]
    with pytest.raises(gr.Error, match="Dialogue line 2: no character 'nobody'"):
        save("talk", "a", *form, "", "hanli: 好\nnobody: 谁？", request=as_(ALICE))
    with pytest.raises(gr.Error, match="talk"):  # bob cannot write alice's scenes
        save("talk", "a", *form, "", "hanli: 好", request=as_(BOB))
    assert yaml_of(ui, "scenes.yaml")["scenes"][0]["lines"][1]["text"] == "我还活着？"

    # the preview dropdown follows the text; ▶ synthesises the chosen line as the form has it
    choices = handler(ui, "projects_edit", "lines_changed")("talk", "云海翻涌。", "hanli: 剑来！", None,
                                                            request=as_(ALICE))
    assert [c[1] for c in choices["choices"]] == [0, 1] and choices["value"] == 0
    play, poll = handler(ui, "projects_edit", "do_play"), handler(ui, "projects_edit", "poll_play")
    audio, job_id, timer, _ = play("talk", "云海翻涌。", "hanli: 剑来！", 1, request=as_(ALICE))
    assert audio is None and timer["active"] is True
    job = Job.get_by_id(job_id)
    assert (job.engine, job.user, job.project, job.params["text"], job.params["voice"]) == (
        "local-tts", "alice", "talk", "剑来！", "male")
    wait_for(lambda: Job.get_by_id(job_id).status == "succeeded", timeout=60)
    audio, _, timer, _ = poll(job_id, request=as_(ALICE))
    assert audio.endswith(".wav") and timer["active"] is False
    before = Job.select().count()
    again, job_again, _, note = play("talk", "云海翻涌。", "hanli: 剑来！", "1", request=as_(ALICE))
    assert again == audio and job_again == "" and "cached" in note and Job.select().count() == before
    for call in (lambda: play("talk", "云海翻涌。", "hanli: 剑来！", 1, request=as_(BOB)),
                 lambda: poll(job_id, request=as_(BOB))):
        with pytest.raises(gr.Error):
            call()
    assert Job.select().count() == before
    with pytest.raises(gr.Error, match="Dialogue line 1"):
        play("talk", "", "剑来！", 0, request=as_(ALICE))


def test_voices_and_sound_settings_are_saved_and_music_uploads(ui, tmp_path):
    save_char = handler(ui, "projects_edit", "do_save", owner="build_characters")
    save_char("talk", "wan", "wan", "南宫婉", "", "", 0.8, "local-tts", "female", 1.1, request=as_(ALICE))
    assert yaml_of(ui, "characters.yaml")["characters"]["wan"]["voice"] == {"engine": "local-tts", "voice": "female",
                                                                           "speed": 1.1}
    voices = handler(ui, "projects_edit", "engine_changed")("local-tts", None, request=as_(ALICE))
    assert {"narrator", "male", "female"} <= {c[1] for c in voices["choices"]}

    settings = handler(ui, "projects_view", "do_save_settings")
    base = ["说话", "xianxia", 8, "64x48", "dashscope", "sdxl-instantid", "svd-xt", "wan2.1-t2v-1.3b", "", 7, "fixed",
            False, "crossfade", 0.25, '{"dashscope": {"prompt_extend": false}}']
    sound = ["local-tts", "female", 0.9, "fixed", 0.5, "mute", "burn", "Noto Sans CJK SC", 28, "top", 3, "", 0.2, False]
    with pytest.raises(gr.Error):
        settings("talk", *base, *sound, request=as_(BOB))
    settings("talk", *base, *sound, request=as_(ALICE))
    cfg = yaml_of(ui, "project.yaml")
    assert cfg["narrator_voice"] == {"engine": "local-tts", "voice": "female", "speed": 0.9}
    assert (cfg["timing"], cfg["speech_padding"], cfg["clip_audio"], cfg["subtitles"], cfg["ducking"]) == (
        "fixed", 0.5, "mute", "burn", False)
    assert cfg["subtitle_style"] == {"font": "Noto Sans CJK SC", "size": 28, "position": "top", "outline": 3}
    assert cfg.get("music") is None

    upload = handler(ui, "projects_view", "do_upload_music")
    theme = make_music(tmp_path / "theme.wav", 0.5)
    choices, _ = upload("talk", str(theme), request=as_(ALICE))
    rel = choices["value"]
    assert rel.startswith("music/theme-") and (ui.folder / "assets" / rel).is_file()
    assert yaml_of(ui, "project.yaml")["music"] == rel and ("assets/" + rel, rel) in choices["choices"]
    fake = tmp_path / "song.mp3"
    fake.write_bytes(b"not sound at all" * 100)
    with pytest.raises(gr.Error, match="no sound"):
        upload("talk", str(fake), request=as_(ALICE))
    with pytest.raises(gr.Error):
        upload("talk", str(theme), request=as_(BOB))
