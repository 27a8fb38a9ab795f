"""Subtitle cues from the script: reading-sized lines, timing from TTS timings or by characters, SRT/ASS."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.subtitles import Cue, ass_text, cues_for, split_text, srt_text, time_cues, units
from profiles.timeline import SceneInput, Utterance, plan


def test_lines_break_at_punctuation_and_stay_short():
    assert split_text("海边的沙滩上，少年韩立缓缓睁开双眼。") == [["海边的沙滩上", "少年韩立缓缓睁开双眼"]]
    assert split_text("韩师弟，看剑！厉师兄，得罪了。") == [["韩师弟，看剑！"], ["厉师兄，得罪了"]]  # a sentence ends a cue
    long = "这是一个非常非常长而且完全没有任何标点符号的句子它应该在十六个字处被切开才对"
    cues = split_text(long)
    assert [len(x) for cue in cues for x in cue] == [16, 16, 6] and len(cues) == 2
    latin = split_text("Han Li lies on the sand, the waves far away; he opens his eyes slowly and wonders where "
                       "he is, and whether he is still alive at all.")
    assert all(len(x) <= 42 for cue in latin for x in cue) and all(len(cue) <= 2 for cue in latin)
    assert latin[0] == ["Han Li lies on the sand", "the waves far away"]
    assert split_text("   ") == []


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("韩立云海仙剑，。！？abc de,.!? ")), max_size=200))
def test_every_cue_fits_and_no_character_is_lost(text):
    cues = split_text(text)
    for cue in cues:
        assert 1 <= len(cue) <= 2
        assert all(units(x) <= 16 + 1e-9 for x in cue)
    kept = "".join(ch for cue in cues for x in cue for ch in x if ch.isalnum())
    assert kept == "".join(ch for ch in text if ch.isalnum())


def test_timing_from_tts_timings_or_spread_by_characters():
    cues = [["你好"], ["世界和平"]]
    timings = ((0.1, 0.3, "你"), (0.3, 0.5, "好"), (0.9, 1.1, "世界"), (1.1, 1.6, "和平"))
    assert time_cues(cues, 10.0, 2.0, timings) == [(10.1, 10.9), (10.9, 12.0)]
    assert time_cues(cues, 10.0, 3.0) == [(10.0, 11.0), (11.0, 13.0)]  # 2 : 4 characters
    mismatched = ((0.0, 1.0, "完全不同的文字内容"),)  # the engine read something else: spread instead
    assert time_cues(cues, 0.0, 3.0, mismatched) == [(0.0, 1.0), (1.0, 3.0)]


def test_cues_follow_the_timeline_and_srt_ass_are_well_formed():
    tl = plan([SceneInput("a", 1.0, "cut", (Utterance(Path("a.wav"), 2.0, text="仙界之上，云海翻涌。", speaker="narrator"),)),
               SceneInput("b", 3.0, "crossfade", (Utterance(Path("b.wav"), 1.0, text="看剑！", speaker="li"),))],
              fps=10, fade=0.5)
    cues = cues_for(tl)
    assert [(c.start, c.end, c.lines) for c in cues] == [(0.0, 2.0, ("仙界之上，云海翻涌",)), (2.3, 3.3, ("看剑！",))]
    for cue, scene in zip(cues, tl.scenes):
        assert cue.end <= scene.end
    srt = srt_text(cues)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:02,000\n仙界之上，云海翻涌\n\n2\n00:00:02,300 --> 00:00:03,300\n")
    ass = ass_text(cues + [Cue(61.5, 3725.25, ("a{b}", "c"))], 832, 480, {"position": "top", "size": 30}, "Noto Sans CJK SC")
    assert "PlayResX: 832\nPlayResY: 480" in ass and "Style: Default,Noto Sans CJK SC,30," in ass
    style = next(x for x in ass.splitlines() if x.startswith("Style: Default")).split(",")
    assert style[18] == "8"  # Alignment: top centre
    assert "Dialogue: 0,0:01:01.50,1:02:05.25,Default,,0,0,0,,a(b)\\Nc" in ass


@pytest.mark.parametrize("text", ["", "……"])
def test_empty_or_punctuation_only_lines_make_no_broken_cues(text):
    tl = plan([SceneInput("a", 2.0, "cut", (Utterance(Path("a.wav"), 1.0, text=text),))], fps=10, fade=0.5)
    for cue in cues_for(tl):
        assert cue.end >= cue.start and cue.lines
