"""Narration, dialogue, voices, subtitles and music in the project files: optional, strict, and the
sample project speaks in every scene."""

from __future__ import annotations

import pytest

from core.errors import ProfileError
from profiles import load_project
from profiles.samples import SAMPLES_DIR
from profiles.voices import DEFAULT_ENGINE, FEMALE, MALE, NARRATOR, NARRATOR_SPEAKER, speech_lines
from tests.projects.conftest import CHARACTERS_YAML, PROJECT_YAML, SCENES_YAML, write_project


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "projects"
    folder.mkdir()
    return folder


def refused(folder, **files) -> ProfileError:
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        load_project(folder)
    assert err.value.zh and err.value.zh != err.value.en
    return err.value


def test_a_project_without_speech_keys_gets_the_silent_defaults(root):
    project = load_project(write_project(root))
    cfg = project.config
    assert (cfg.narrator_voice, cfg.timing, cfg.speech_padding, cfg.subtitles, cfg.music, cfg.music_volume,
            cfg.ducking, cfg.clip_audio) == (None, "voice", 0.3, "file", None, 0.3, True, "keep")
    assert cfg.subtitle_style.position == "bottom" and cfg.subtitle_style.font == ""
    assert all(s.narration == "" and s.lines == [] for s in project.scenes)
    assert all(speech_lines(project, s) == [] for s in project.scenes)
    assert project.characters["hanli"].voice is None


def test_speech_fields_load_and_voices_resolve(root):
    folder = write_project(root, project=PROJECT_YAML + (
        "narrator_voice: {engine: dashscope-tts, voice: Cherry}\ntiming: fixed\nspeech_padding: 0.5\n"
        "subtitles: burn\nsubtitle_style: {font: Noto Sans CJK SC, size: 28, position: top, outline: 3}\n"
        "music: assets/music/theme.mp3\nmusic_volume: 0.2\nducking: false\nclip_audio: mute\n"),
        characters=CHARACTERS_YAML + "    voice: {engine: local-tts, voice: male, speed: 1.2}\n",
        scenes=SCENES_YAML.replace("    camera: medium shot\n", "    camera: medium shot\n    narration: 韩立打坐。\n"
                                   "    lines:\n      - {character: hanli, text: 长生之路。}\n"
                                   "      - {character: hanli, text: 再来！, at: 2.5}\n"))
    project = load_project(folder)
    cfg = project.config
    assert cfg.music == "music/theme.mp3" and cfg.timing == "fixed" and cfg.subtitle_style.size == 28
    lines = speech_lines(project, project.scenes[1])
    assert [(x.speaker, x.character, x.voice.engine, x.voice.voice, x.at) for x in lines] == [
        (NARRATOR_SPEAKER, False, "dashscope-tts", "Cherry", None), ("hanli", True, "local-tts", "male", None),
        ("hanli", True, "local-tts", "male", 2.5)]
    assert lines[1].voice.speed == 1.2 and lines[0].text == "韩立打坐。"
    assert lines[1].key() != lines[2].key()


@pytest.mark.parametrize("file, old, new, field, needle", [
    ("project", "seed: 7", "seed: 7\ntiming: slow", "timing", "'voice' or 'fixed'"),
    ("project", "seed: 7", "seed: 7\nsubtitles: yes", "subtitles", "'burn', 'file' or 'off'"),
    ("project", "seed: 7", "seed: 7\nmusic: ../../etc/passwd.mp3", "music", "inside assets/"),
    ("project", "seed: 7", "seed: 7\nmusic: assets/theme.exe", "music", "audio file"),
    ("project", "seed: 7", "seed: 7\nnarrator_voice: {engine: local-tts}", "narrator_voice.voice", "required"),
    ("project", "seed: 7", "seed: 7\nsubtitle_style: {colour: red}", "subtitle_style.colour", "unknown field"),
    ("project", "seed: 7", "seed: 7\nmusic_volume: 3", "music_volume", "less than or equal to 1"),
    ("characters", "instantid_strength: 0.9", "instantid_strength: 0.9\n    voice: {engine: x, voice: y, speed: 9}",
     "characters.hanli.voice.speed", "less than or equal to 2"),
    ("scenes", "    camera: medium shot", "    camera: medium shot\n    lines: [{character: hanli}]",
     "scenes[1].lines[0].text", "required"),
    ("scenes", "    camera: medium shot", "    camera: medium shot\n    lines: [{character: hanli, text: hi, at: -1}]",
     "scenes[1].lines[0].at", "greater than or equal to 0"),
])
def test_bad_speech_fields_name_file_field_and_fix(root, file, old, new, field, needle):
    folder = write_project(root)
    source = {"project": PROJECT_YAML, "characters": CHARACTERS_YAML, "scenes": SCENES_YAML}[file]
    exc = refused(folder, **{file: source.replace(old, new)})
    assert exc.fields == {"file": f"{file}.yaml", "field": field}, exc.en
    assert needle in exc.en, exc.en


def test_a_line_by_an_unknown_character_is_refused(root):
    folder = write_project(root)
    exc = refused(folder, scenes=SCENES_YAML.replace(
        "    camera: medium shot", "    camera: medium shot\n    lines: [{character: ghost, text: 呜}]"))
    assert exc.fields == {"file": "scenes.yaml", "field": "scenes[1].lines[0].character"}
    assert "unknown character 'ghost'" in exc.en and "hanli" in exc.en


def test_the_sample_speaks_in_every_scene_with_a_voice_for_everyone():
    project = load_project(SAMPLES_DIR / "xianxia-sample")
    assert project.config.narrator_voice.engine == DEFAULT_ENGINE
    assert {c.voice.voice for c in project.characters.values()} <= {NARRATOR, MALE, FEMALE}
    assert all(c.voice and c.voice.engine == DEFAULT_ENGINE for c in project.characters.values())
    for scene in project.scenes:
        lines = speech_lines(project, scene)
        assert lines and lines[0].speaker == NARRATOR_SPEAKER
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in x.text) for x in lines)
    assert sum(len(s.lines) for s in project.scenes) >= 5
