"""Stitching scene clips into one episode with ffmpeg (imageio-ffmpeg's binary, as a subprocess).

Each clip is brought to the episode's frame rate and size (scaled to fit, then padded: no
stretching), then trimmed — or its last frame held — to exactly its scene's duration, so the
episode's length is the sum of its scenes (less the overlap of each crossfade). Scenes are
joined by cuts or crossfades (``xfade``); an optional 2x Lanczos upscale comes last. Output is
H.264 / yuv420p with ``+faststart``, which every browser plays.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import Cancelled, EngineError, NotAvailable

log = logging.getLogger(__name__)

MAX_SIDE = 3840


@dataclass(frozen=True)
class Clip:
    path: Path
    duration: float  # seconds this clip lasts in the episode
    transition: str = "cut"  # into this clip: cut | crossfade


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise NotAvailable("ffmpeg is missing: pip install imageio-ffmpeg.",
                           "缺少 ffmpeg：请安装 imageio-ffmpeg。") from exc


def frames_of(duration: float, fps: int) -> int:
    return max(1, round(duration * fps))


def output_size(width: int, height: int, upscale: bool) -> tuple[int, int]:
    """The episode's size: the project's, or 2x it (at most MAX_SIDE on the long side) when upscaling."""
    if not upscale:
        return width, height
    factor = min(2.0, MAX_SIDE / max(width, height))
    return round(width * factor / 2) * 2, round(height * factor / 2) * 2


def plan_timeline(clips: list[Clip], fps: int, fade: float) -> tuple[list[float], int]:
    """(crossfade length into each clip — 0 for a cut, total frames of the episode)."""
    fades, total = [], 0
    for i, clip in enumerate(clips):
        n = frames_of(clip.duration, fps)
        f = 0
        if i and clip.transition == "crossfade":
            prev = frames_of(clips[i - 1].duration, fps)
            f = max(1, min(frames_of(fade, fps), n // 2, prev // 2))
        fades.append(f / fps)
        total += n - f
    return fades, total


def filter_graph(clips: list[Clip], fps: int, width: int, height: int, fade: float, upscale: bool) -> tuple[str, int]:
    parts = []
    for i, clip in enumerate(clips):
        n = frames_of(clip.duration, fps)
        parts.append(
            f"[{i}:v]fps={fps},scale={width}:{height}:force_original_aspect_ratio=decrease:"
            f"force_divisible_by=2:flags=lanczos,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
            f"format=yuv420p,tpad=stop_mode=clone:stop_duration={clip.duration + 1:.3f},"
            f"trim=end_frame={n},setpts=N/{fps}/TB[c{i}]")
    fades, total = plan_timeline(clips, fps, fade)
    current, frames = "c0", frames_of(clips[0].duration, fps)
    for i in range(1, len(clips)):
        out = f"j{i}"
        n = frames_of(clips[i].duration, fps)
        if fades[i]:
            f = round(fades[i] * fps)
            parts.append(f"[{current}][c{i}]xfade=transition=fade:duration={f / fps:.6f}:"
                         f"offset={(frames - f) / fps:.6f}[{out}]")
            frames += n - f
        else:
            parts.append(f"[{current}][c{i}]concat=n=2:v=1:a=0[{out}]")
            frames += n
        current = out
    out_w, out_h = output_size(width, height, upscale)
    tail = f"scale={out_w}:{out_h}:flags=lanczos," if upscale else ""
    parts.append(f"[{current}]{tail}format=yuv420p,setsar=1[out]")
    return ";".join(parts), total


def stitch(clips: list[Clip], target: Path, *, fps: int, width: int, height: int, fade: float = 0.5,
           upscale: bool = False, metadata: dict | None = None, progress=None, cancelled=None) -> dict:
    """Write the episode to ``target`` (inside a staging folder); returns frames, fps, size, duration."""
    if not clips:
        raise EngineError("Nothing to stitch: the episode has no clips.", "没有可拼接的片段。")
    graph, total = filter_graph(clips, fps, width, height, fade, upscale)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
           "-progress", "pipe:1"]
    for clip in clips:
        cmd += ["-i", str(clip.path)]
    cmd += ["-filter_complex", graph, "-map", "[out]", "-an", "-r", str(fps), "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "veryfast", "-movflags", "+faststart"]
    for key, value in (metadata or {}).items():
        cmd += ["-metadata", f"{key}={value}"]
    cmd.append(str(target))
    errlog = target.with_suffix(".ffmpeg.log")
    with open(errlog, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if line.startswith("frame=") and progress is not None:
                    done = int(line[6:] or 0) if line[6:].isdigit() else 0
                    progress(min(done, total), total)
                if cancelled is not None and cancelled():
                    proc.kill()
                    proc.wait()
                    raise Cancelled()
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        detail = errlog.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise EngineError(f"ffmpeg could not stitch the episode (exit {code}): {' | '.join(detail)[:600]}",
                          f"ffmpeg 拼接失败（退出码 {code}）：{' | '.join(detail)[:600]}")
    errlog.unlink(missing_ok=True)
    out_w, out_h = output_size(width, height, upscale)
    return {"frames": total, "fps": fps, "width": out_w, "height": out_h, "duration": total / fps}
