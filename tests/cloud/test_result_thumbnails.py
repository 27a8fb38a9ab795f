"""A downloaded result's probe and thumbnail (engines/cloud/results.py): the thumbnail is the first frame,
scaled by FFmpeg to at most ``THUMB_SIDE`` on its long side, with its aspect and its colours."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.media import THUMB_SIDE, write_video
from engines.cloud import results


def _halves(width: int, height: int, frames: int = 6) -> np.ndarray:
    """Left half red, right half blue, every frame."""
    video = np.zeros((frames, height, width, 3), dtype=np.uint8)
    video[:, :, : width // 2, 0] = 220
    video[:, :, width // 2:, 2] = 220
    return video


def test_a_wide_result_gets_a_thumbnail_of_its_first_frame_at_thumbnail_size(tmp_path):
    path = write_video(_halves(640, 360), tmp_path / "clip.mp4", 8)
    out = results.video_output(path, meta={"model": "wan2.6-t2v"})
    assert (out.width, out.height, out.frames, out.has_audio) == (640, 360, 6, False)
    with Image.open(out.thumbnail) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (THUMB_SIDE, THUMB_SIDE * 360 // 640)
        left, right = thumb.getpixel((20, 90)), thumb.getpixel((THUMB_SIDE - 20, 90))
    assert left[0] > 150 and left[2] < 80  # red stays red (the colour conversion is right)
    assert right[2] > 150 and right[0] < 80
    assert out.meta == {"model": "wan2.6-t2v", "has_audio": False}


def test_a_small_portrait_result_is_never_enlarged(tmp_path):
    path = write_video(_halves(96, 160), tmp_path / "tall.mp4", 8)
    out = results.video_output(path)
    with Image.open(out.thumbnail) as thumb:
        assert thumb.size == (96, 160)
