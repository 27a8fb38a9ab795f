"""Every timeline stitches: random transitions, clip lengths, sizes (odd ones too), frame rates,
codecs and audio streams (hypothesis), plus fixed cases — the sample project's transitions with
clips like the cloud fakes serve, one clip, 20 clips, mixed everything.

Each output is probed: the video stream is there, every frame decodes, and its length is the
planned timeline (summed scene durations less the crossfades) within one frame.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.stitch import Clip, plan_timeline, stitch
from profiles.project import load_project
from profiles.samples import SAMPLES_DIR
from tests.cloud.fakeserver import tiny_mp4
from tests.projects.synth import CODECS, make_clip, probe_av

SAMPLE = SAMPLES_DIR / "xianxia-sample"


def check_episode(out: Path, clips: list[Clip], fps: int, width: int, height: int, fade: float,
                  upscale: bool = False) -> dict:
    fades, total = plan_timeline(clips, fps, fade)
    planned = sum(c.duration for c in clips) - sum(fades)
    info = probe_av(out)
    video = info["video"]
    assert video is not None, "no video stream"
    assert video["frames"] == total, (video, total)  # every frame decodes, none missing or extra
    assert abs(video["frames"] / fps - planned) <= 1 / fps + 1e-9, (video["frames"] / fps, planned)
    assert video["fps"] == fps and video["codec"] == "h264" and video["pix_fmt"] == "yuv420p"
    size = (width * 2, height * 2) if upscale else (width, height)
    assert (video["width"], video["height"]) == size
    return info


clip_spec = st.fixed_dictionaries({
    "seconds": st.floats(0.3, 3.0),  # the source clip's own length
    "duration": st.floats(0.3, 3.0),  # what the scene lasts: the clip is trimmed or its last frame held
    "fps": st.integers(8, 30),
    "width": st.integers(17, 97),
    "height": st.integers(17, 97),
    "codec": st.sampled_from(sorted(CODECS)),
    "audio": st.one_of(st.none(), st.fixed_dictionaries({"rate": st.sampled_from([22050, 44100, 48000]),
                                                         "channels": st.sampled_from([1, 2])})),
    "transition": st.sampled_from(["cut", "crossfade"]),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(specs=st.lists(clip_spec, min_size=1, max_size=6), fps=st.integers(8, 30),
       width=st.integers(8, 48).map(lambda v: v * 2), height=st.integers(8, 48).map(lambda v: v * 2),
       fade=st.floats(0.05, 1.5), upscale=st.booleans())
def test_any_timeline_stitches(tmp_path_factory, specs, fps, width, height, fade, upscale):
    folder = tmp_path_factory.mktemp("prop")
    clips = []
    for i, spec in enumerate(specs):
        path = make_clip(folder / f"c{i}.mp4", spec["seconds"], spec["fps"], spec["width"], spec["height"],
                         spec["audio"], spec["codec"], seed=i)
        clips.append(Clip(path, spec["duration"], spec["transition"] if i else "cut"))
    out = folder / "episode.mp4"
    result = stitch(clips, out, fps=fps, width=width, height=height, fade=fade, upscale=upscale)
    check_episode(out, clips, fps, width, height, fade, upscale)
    assert result["frames"] == plan_timeline(clips, fps, fade)[1]


def test_sample_project_transitions_with_cloud_clips(tmp_path):
    """The reported failure: six 1-second 64x48 8 fps clips (what the cloud fakes serve) on the sample's
    own scenes — crossfades, then a cut, then a crossfade after the cut."""
    project = load_project(SAMPLE)
    cfg = project.config
    width, height = cfg.size
    clips = []
    for i, scene in enumerate(project.scenes):
        transition = "cut" if i == 0 else (scene.transition or cfg.transition)
        clips.append(Clip(tiny_mp4(tmp_path / f"{scene.id}.mp4"), scene.duration, transition))
    assert "cut" in [c.transition for c in clips[1:]] and clips[-1].transition == "crossfade"
    out = tmp_path / "episode.mp4"
    stitch(clips, out, fps=cfg.fps, width=width, height=height, fade=cfg.transition_duration)
    check_episode(out, clips, cfg.fps, width, height, cfg.transition_duration)


def test_one_clip(tmp_path):
    clips = [Clip(make_clip(tmp_path / "a.mp4", 1.0, 12, 33, 21), 2.0, "crossfade")]
    out = tmp_path / "one.mp4"
    stitch(clips, out, fps=24, width=64, height=48, fade=0.5)
    check_episode(out, clips, 24, 64, 48, 0.5)


def test_twenty_clips_every_pattern(tmp_path):
    """20 clips: runs of cuts and crossfades, very short scenes between long ones, odd sizes and fps."""
    clips = []
    for i in range(20):
        path = make_clip(tmp_path / f"c{i}.mp4", 0.3 + (i % 4) * 0.5, 8 + (i * 5) % 23, 17 + i * 3, 95 - i * 3,
                         {"rate": 44100, "channels": 1} if i % 3 == 0 else None,
                         sorted(CODECS)[i % len(CODECS)], seed=i)
        clips.append(Clip(path, 0.3 + (i * 7 % 10) * 0.27, "cut" if i == 0 or i % 5 == 2 else "crossfade"))
    out = tmp_path / "twenty.mp4"
    stitch(clips, out, fps=15, width=48, height=32, fade=0.6)
    check_episode(out, clips, 15, 48, 32, 0.6)


@pytest.mark.parametrize("fps", [7, 24, 30])
def test_mixed_fps_sizes_lengths(tmp_path, fps):
    specs = [(0.4, 30, 97, 17, "h264-444", 2.5), (2.9, 8, 20, 90, "h264", 0.3), (1.0, 25, 64, 48, "mpeg4", 1.7),
             (0.3, 12, 31, 31, "h264-444", 0.31), (3.0, 29.97, 96, 54, "h264", 3.0)]
    clips = [Clip(make_clip(tmp_path / f"m{i}.mp4", s, f, w, h, None, codec, seed=i), d,
                  "crossfade" if i % 2 else "cut")
             for i, (s, f, w, h, codec, d) in enumerate(specs)]
    out = tmp_path / "mixed.mp4"
    stitch(clips, out, fps=fps, width=64, height=36, fade=0.5)
    check_episode(out, clips, fps, 64, 36, 0.5)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(specs=st.lists(clip_spec, min_size=1, max_size=4), speech=st.lists(st.lists(st.floats(0.2, 1.5), max_size=2),
                                                                          min_size=4, max_size=4),
       fps=st.integers(8, 30), fade=st.floats(0.05, 1.5), music=st.booleans(),
       clip_audio=st.sampled_from(["keep", "mute"]), timing=st.sampled_from(["voice", "fixed"]))
def test_any_timeline_stitches_with_its_sound(tmp_path_factory, specs, speech, fps, fade, music, clip_audio, timing):
    """The whole render (timeline, mix, subtitles, stitch): picture and sound agree to a frame."""
    from app import episode_render
    from profiles.timeline import Utterance
    from tests.projects.synth import make_music, make_tone

    folder = tmp_path_factory.mktemp("mix")
    clips, utts = [], []
    for i, spec in enumerate(specs):
        path = make_clip(folder / f"c{i}.mp4", spec["seconds"], spec["fps"], spec["width"], spec["height"],
                         spec["audio"], spec["codec"], seed=i)
        clips.append(Clip(path, spec["duration"], spec["transition"] if i else "cut"))
        utts.append([Utterance(make_tone(folder / f"u{i}-{j}.wav", d, 200 + 40 * j), d, text="云海翻涌，韩立御剑。")
                     for j, d in enumerate(speech[i])])
    track = make_music(folder / "m.wav", 1.3) if music else None
    result = episode_render.render(clips, utts, folder, fps=fps, width=48, height=32, fade=fade, music=track,
                                   audio={"clip_audio": clip_audio, "timing": timing})
    overran = any(n.startswith("timing: fixed could not hold") for n in result["notes"])
    assert not overran or timing == "fixed"
    if timing == "fixed" and not overran:
        assert result["extended"] == []
    info = probe_av(folder / "episode.mp4")
    assert info["video"]["frames"] == result["frames"]
    hears = bool(any(utts) or music or (clip_audio == "keep" and any(s["audio"] for s in specs)))
    assert (info["audio"] is not None) == hears == result["audio"]
    if hears:
        assert abs(info["audio"]["seconds"] - result["frames"] / fps) <= 1 / fps
    assert result["cues"] == (sum(len(u) for u in utts) if any(utts) else 0)
