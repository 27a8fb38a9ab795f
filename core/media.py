"""Files the studio writes: atomic JSON, H.264 MP4 through PyAV, PNG, thumbnails, probing.

Every writer goes to a temporary name in the target folder and renames, so a reader (or a
crash) never sees half a file. The rename waits out a file another program holds open (Windows);
if it never frees up, ``FileBusy`` names where the new file was kept. Video is H.264 / yuv420p, which every browser plays.
"""

from __future__ import annotations

import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import FileBusy
from .platform import check_path_length, replace_with_retry

THUMB_SIDE = 320


def _drop(tmp: Path, exc: BaseException) -> None:
    if not isinstance(exc, FileBusy):  # a busy destination: the new file stays, named in the error
        tmp.unlink(missing_ok=True)


def _tmp_open_beside(path: Path, suffix: str) -> tuple[int, Path]:
    """A new temporary file in ``path``'s folder, made if it is new: its descriptor and its name."""
    check_path_length(path)

    def make() -> tuple[int, str]:
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:40]}-", suffix=suffix)

    try:
        fd, name = make()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = make()
    return fd, Path(name)


def _tmp_beside(path: Path, suffix: str) -> Path:
    fd, tmp = _tmp_open_beside(path, suffix)
    os.close(fd)
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """``data`` at ``path``, synced, through a temporary file written on the descriptor that made it (a
    cloud burst writes a few of these per job: one open, not two)."""
    fd, tmp = _tmp_open_beside(path, ".part")
    try:
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        replace_with_retry(tmp, path)
    except BaseException as exc:
        _drop(tmp, exc)
        raise
    return path


def atomic_write_json(path: Path, obj: Any) -> Path:
    text = json.dumps(obj, ensure_ascii=False, indent=2, default=str)
    return atomic_write_bytes(path, text.encode("utf-8"))


def _to_uint8(frames):
    import numpy as np

    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if arr.ndim == 3:  # one image
        arr = arr[None]
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    return arr


def write_video(frames, path: Path, fps: float, metadata: dict | None = None, crf: int = 18) -> Path:
    """Write frames (F, H, W, 3; uint8 or float in [0, 1]) as H.264 yuv420p MP4.

    Odd widths/heights are padded by one pixel (yuv420p needs even sizes).
    """
    import av
    import numpy as np

    arr = _to_uint8(frames)
    f, h, w, _ = arr.shape
    if h % 2 or w % 2:
        arr = np.pad(arr, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        h, w = arr.shape[1:3]
    tmp = _tmp_beside(path, ".mp4")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            for key, value in (metadata or {}).items():
                container.metadata[key] = str(value)
            rate = Fraction(fps).limit_denominator(1001)
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast", "movflags": "+faststart"}
            for frame in arr:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        replace_with_retry(tmp, path)
    except BaseException as exc:
        _drop(tmp, exc)
        raise
    return path


def write_png(image, path: Path, metadata: dict | None = None) -> Path:
    """Save a PIL image as PNG with text chunks (the job's parameters)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(key, str(value))
    tmp = _tmp_beside(path, ".png")
    try:
        image.save(tmp, format="PNG", pnginfo=info)
        replace_with_retry(tmp, path)
    except BaseException as exc:
        _drop(tmp, exc)
        raise
    return path


def write_thumbnail(image, path: Path) -> Path:
    im = image.convert("RGB")
    im.thumbnail((THUMB_SIDE, THUMB_SIDE))
    tmp = _tmp_beside(path, ".jpg")
    try:
        im.save(tmp, format="JPEG", quality=85)
        replace_with_retry(tmp, path)
    except BaseException as exc:
        _drop(tmp, exc)
        raise
    return path


def first_frame(video: Path):
    """The first decoded frame of a video as a PIL image."""
    import av

    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            return frame.to_image()
    raise ValueError(f"{video} has no video frames")


def last_frame(video: Path):
    """The last decoded frame of a video as a PIL image."""
    import av

    last = None
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            last = frame
    if last is None:
        raise ValueError(f"{video} has no video frames")
    return last.to_image()


def video_thumbnail(video: Path, path: Path) -> Path:
    return write_thumbnail(first_frame(video), path)


def probe(path: Path) -> dict:
    """Codec, size, pixel format, frame count, fps and duration of a video (decodes it)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        ctx = stream.codec_context
        fps = float(stream.average_rate) if stream.average_rate else None
        return {
            "codec": ctx.name,
            "width": ctx.width,
            "height": ctx.height,
            "pix_fmt": ctx.pix_fmt,
            "frames": frames,
            "fps": fps,
            "duration": (frames / fps) if fps else None,
            "metadata": dict(container.metadata),
        }


def is_mp4(head: bytes) -> bool:
    """ISO base media files carry ``ftyp`` at byte 4."""
    return len(head) >= 12 and head[4:8] == b"ftyp"
