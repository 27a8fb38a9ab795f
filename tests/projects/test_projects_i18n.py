"""The Projects tab in one language at a time, below the browser: its text table is complete in both
languages, the handlers answer in the caller's language (their own messages, the core's errors, the
scenes table's headers), and the planner's English notes read in Chinese on a Chinese page."""

from __future__ import annotations

import re
from types import SimpleNamespace

import gradio as gr
import pytest

from app.access import SCOPE_KEY
from app.ui.draft_view import one_language
from app.ui.i18n import TEXTS
from app.ui.project_texts import HEADERS, NOTES_ZH, PROJECT_TEXTS, SAID, plan_note, step_name
from tests.projects.test_projects_speech_ui import ALICE, BOB, as_, handler, ui  # noqa: F401  (the fixture)

CJK = re.compile(r"[\u3400-\u9fff]")


def in_chinese(principal):
    return SimpleNamespace(scope={SCOPE_KEY: principal}, headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"})


def test_every_projects_text_has_both_languages_and_no_mixed_label():
    assert set(PROJECT_TEXTS) <= set(TEXTS)
    for key, (en, zh) in {**PROJECT_TEXTS, **SAID}.items():
        assert en and zh, key
        assert not CJK.search(en), f"{key}: Chinese in the English text {en!r}"
        if en not in ("←", "→"):
            assert en != zh, f"{key}: the same text in both languages"
        assert " / " not in en and " / " not in zh, f"{key}: two languages in one text?"
    assert len(HEADERS["en"]) == len(HEADERS["zh"])


def test_planner_notes_and_steps_read_in_chinese():
    notes = ["wan2.1-t2v-1.3b makes text-to-video: the keyframe or the reference face is not used",
             "the still keeps the face of hanli (one face per still)",
             "hanli has no reference face: text-to-video (add one in characters.yaml for the same face in every scene)",
             "dashscope chooses the clip length; it is trimmed or held to 4.5 s",
             "reuses the video of job 0123abcd (nothing is rendered)",
             "reuses the clip of scene s01 (one job serves both; it is trimmed or held to 3 s)",
             "starts from the last frame of scene s02's clip: it re-renders whenever s02 does",
             "ark also returns the clip's last frame, for the scene that continues from it",
             "scene s03: clip on svd-xt", "waiting for the queue", "done", "done: renders/episode_v1.mp4"]
    assert len(notes) == len(NOTES_ZH)
    for note in notes:
        zh = plan_note(note, "zh")
        assert CJK.search(zh) and zh != note, note
        assert plan_note(note, "en") == note
    assert plan_note("a vendor's own words", "zh") == "a vendor's own words"
    assert step_name("still: sdxl-instantid", "zh") == "定妆图: sdxl-instantid" and step_name("tts2", "zh") == "语音2"
    assert step_name("clip: svd-xt", "en") == "clip: svd-xt"
    both = "Scene s1: 2 line(s) by an unknown character were left out. / 场景 s1：2 句台词的角色未知，已略去。"
    assert one_language(both, "en").startswith("Scene s1") and one_language(both, "zh").startswith("场景 s1")


def test_handlers_answer_in_the_callers_language(ui):  # noqa: F811
    zh, en = in_chinese(ALICE), as_(ALICE)
    keyframe = handler(ui, "projects_edit", "do_keyframe")
    with pytest.raises(gr.Error, match="先选择一张图片"):
        keyframe("talk", "a", None, request=zh)
    with pytest.raises(gr.Error, match="Choose an image first"):
        keyframe("talk", "a", None, request=en)
    load = handler(ui, "projects_edit", "load", owner="build_scenes")
    assert load("talk", request=zh)[0]["headers"] == HEADERS["zh"]
    assert load("talk", request=en)[0]["headers"] == HEADERS["en"]
    # the core's errors (AppError, English and Chinese): the caller's half
    delete = handler(ui, "projects_edit", "do_delete", owner="build_scenes")
    with pytest.raises(gr.Error) as refused:
        delete("talk", "a", request=in_chinese(BOB))
    assert CJK.search(str(refused.value)) and not re.search(r"\b(the|not|project)\b", str(refused.value))
    settings = handler(ui, "projects_view", "do_save_settings")
    with pytest.raises(gr.Error, match="引擎参数不是有效的 JSON"):
        settings("talk", *[None] * 14, "{not json", request=zh)
