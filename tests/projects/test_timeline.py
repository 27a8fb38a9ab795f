"""Timeline planning (pure): scenes on the frame grid, speech placed in its scene, voice and fixed timing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.stitch import plan_timeline, starts
from profiles.timeline import GAP, SceneInput, TimingError, Utterance, estimate_seconds, plan


def utt(duration, at=None, text="话"):
    return Utterance(Path("x.wav"), duration, text=text, at=at)


def test_voice_timing_lengthens_scenes_to_their_speech_and_holds_the_rest():
    scenes = [SceneInput("a", 2.0, "cut", (utt(3.0), utt(1.0))),  # 3 + 0.2 + 1 + 0.3 pad + 0.5 fade out > 2
              SceneInput("b", 4.0, "crossfade", (utt(1.0),)),  # fits: unchanged
              SceneInput("c", 1.0, "cut")]  # silent: unchanged
    tl = plan(scenes, fps=10, fade=0.5, timing="voice", padding=0.3)
    assert [s.frames for s in tl.scenes] == [50, 40, 10] and tl.extended == ("a",)
    assert [s.fade_in for s in tl.scenes] == [0, 5, 0]
    assert [s.start_frame for s in tl.scenes] == [0, 45, 85] and tl.total_frames == 95
    a, b = tl.scenes[0].speech, tl.scenes[1].speech
    assert (a[0].start, a[0].end) == (0.0, 3.0) and a[1].start == pytest.approx(3.0 + GAP)
    assert a[1].end + 0.3 <= tl.scenes[1].start + 1e-9  # quiet padding before the next scene fades in
    assert b[0].start == pytest.approx(4.5)


def test_lines_with_at_start_there_and_later_lines_follow_them():
    tl = plan([SceneInput("a", 10.0, "cut", (utt(1.0), utt(1.0, at=5.0), utt(0.5)))], fps=8, fade=0.5)
    speech = tl.scenes[0].speech
    assert [(s.start, s.end) for s in speech] == [(0.0, 1.0), (5.0, 6.0), (6.0 + GAP, 6.5 + GAP)]


def test_fixed_timing_names_every_scene_whose_speech_does_not_fit():
    scenes = [SceneInput("s1", 2.0, "cut", (utt(1.7),)), SceneInput("s2", 2.0, "crossfade", (utt(3.0),)),
              SceneInput("s3", 5.0, "crossfade", (utt(1.0),)), SceneInput("s4", 1.0, "cut", (utt(0.9, at=0.5),))]
    with pytest.raises(TimingError) as err:
        plan(scenes, fps=16, fade=0.5, timing="fixed")
    en = err.value.en
    # s1: 1.7 s + 0.5 s fading into s2 > 2 s; s2: 3 s > 2 s; s4: starts at 0.5, ends at 1.4 > 1
    assert "'s1'" in en and "'s2'" in en and "'s4'" in en and "'s3'" not in en
    assert "timing: voice" in en and err.value.zh
    tl = plan(scenes[2:3], fps=16, fade=0.5, timing="fixed")
    assert tl.scenes[0].frames == 80 and tl.extended == ()


def test_the_plan_agrees_with_the_stitch_frame_for_frame():
    scenes = [SceneInput(f"s{i}", 0.3 + i * 0.37, "crossfade" if i % 3 else "cut",
                         (utt(0.2 + i * 0.3),) if i % 2 else ()) for i in range(9)]
    tl = plan(scenes, fps=24, fade=0.4)
    clips = tl.clips([Path(f"{i}.mp4") for i in range(9)], [s.transition if i else "cut" for i, s in enumerate(scenes)])
    assert plan_timeline(clips, 24, 0.4)[1] == tl.total_frames
    assert starts(clips, 24, 0.4) == [s.start_frame for s in tl.scenes]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.3, 6), st.sampled_from(["cut", "crossfade"]),
                          st.lists(st.floats(0.1, 4), max_size=4)), min_size=1, max_size=12),
       st.integers(8, 30), st.floats(0.05, 1.5), st.floats(0, 1))
def test_voice_timing_never_lets_two_scenes_talk_at_once(raw, fps, fade, padding):
    scenes = [SceneInput(f"s{i}", d, t, tuple(utt(u) for u in us)) for i, (d, t, us) in enumerate(raw)]
    tl = plan(scenes, fps=fps, fade=fade, timing="voice", padding=padding)
    speech = tl.speech
    for a, b in zip(speech, speech[1:]):
        assert a.end <= b.start + 1e-9
    for scene, nxt in zip(tl.scenes, tl.scenes[1:] + (None,)):
        for s in scene.speech:
            assert scene.start - 1e-9 <= s.start and s.end + padding <= scene.end - (nxt.fade_in / fps if nxt else 0) + 1e-6
        assert scene.frames >= max(1, round(raw[tl.scenes.index(scene)][0] * fps))
    assert tl.total_frames == sum(s.frames for s in tl.scenes) - sum(s.fade_in for s in tl.scenes)


def test_speech_estimates():
    assert estimate_seconds("海边的沙滩上，少年韩立缓缓睁开双眼。") == pytest.approx(16 / 4.5 + 0.25)
    assert estimate_seconds("Han Li opens his eyes", speed=2.0) == pytest.approx(5 / 2.8 / 2)
    assert estimate_seconds("") == 0


def test_the_plan_refuses_fixed_scenes_too_short_for_their_text_before_anything_runs():
    from profiles.plan import ScenePlan, check_speech_fits, speech_json
    from profiles.project import load_project
    from profiles.samples import SAMPLES_DIR
    from profiles.voices import speech_lines

    project = load_project(SAMPLES_DIR / "xianxia-sample")
    plans = [ScenePlan(s.id, s.title, s.duration, 1, "t2v", s.prompt, "", "crossfade" if i else "cut", [],
                       speech=[speech_json(x) for x in speech_lines(project, s)])
             for i, s in enumerate(project.scenes)]
    check_speech_fits(plans, project.config)  # timing: voice — scenes grow instead
    fixed = project.config.model_copy(update={"timing": "fixed"})
    with pytest.raises(TimingError, match="s01-sky"):  # 36 characters of narration in 5 s
        check_speech_fits(plans, fixed)
    roomy = [ScenePlan(**{**p.__dict__, "duration": 60.0}) for p in plans]
    check_speech_fits(roomy, fixed)
