"""The ffmpeg stitch on its own: frame-exact durations, crossfades, upscale, versions."""

from __future__ import annotations

import numpy as np
import pytest

from core import media
from app.episodes import publish
from core.stitch import Clip, plan_timeline, stitch


def clip(path, frames, fps, width, height, value):
    arr = np.full((frames, height, width, 3), value, np.uint8)
    return media.write_video(arr, path, fps)


@pytest.mark.parametrize("transition, upscale", [("cut", False), ("crossfade", False), ("crossfade", True)])
def test_stitch_normalises_fps_size_and_duration(tmp_path, transition, upscale):
    clips = [Clip(clip(tmp_path / "a.mp4", 5, 8, 48, 32, 200), 1.0),  # too short: its last frame is held
             Clip(clip(tmp_path / "b.mp4", 25, 7, 64, 80, 90), 2.0, transition),  # portrait, other fps
             Clip(clip(tmp_path / "c.mp4", 48, 24, 64, 48, 30), 1.5, transition)]  # too long: trimmed
    out = tmp_path / "episode.mp4"
    result = stitch(clips, out, fps=16, width=64, height=48, fade=0.5, upscale=upscale)
    info = media.probe(out)
    fades, total = plan_timeline(clips, 16, 0.5)
    expected = 16 + 32 + 24 - (0 if transition == "cut" else 8 + 8)
    assert total == expected == info["frames"] == result["frames"]
    assert info["fps"] == 16 and info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == ((128, 96) if upscale else (64, 48)) == (result["width"], result["height"])
    with __import__("av").open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    mid = frames[40 if transition == "cut" else 30]
    assert mid[:, :8].mean() < 20 and 60 < mid[:, 32].mean() < 120  # b is letterboxed (pillars), not stretched


def test_versions_are_never_overwritten(tmp_path):
    renders = tmp_path / "renders"
    paths = []
    for i in range(3):
        src = tmp_path / f"staged{i}.mp4"
        src.write_bytes(b"v%d" % i)
        paths.append(publish(src, renders, "episode"))
    assert [(p.name, n) for p, n in paths] == [("episode_v1.mp4", 1), ("episode_v2.mp4", 2), ("episode_v3.mp4", 3)]
    assert [p.read_bytes() for p, _ in paths] == [b"v0", b"v1", b"v2"]
