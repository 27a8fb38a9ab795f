"""Stitching scene clips into one episode with ffmpeg (imageio-ffmpeg's binary, as a subprocess).

Each clip is brought to the episode's frame rate and size (scaled to fit, then padded: no
stretching), then trimmed — or its last frame held — to exactly its scene's duration, so the
episode's length is the sum of its scenes (less the overlap of each crossfade). Scenes are
joined by cuts or crossfades (``xfade``); an optional 2x Lanczos upscale comes last. Output is
H.264 / yuv420p with ``+faststart``, which every browser plays.
"""

from __future__ import annotations

import functools
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.errors import Cancelled, EngineError, NotAvailable
from core.platform import no_window

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


@functools.lru_cache(maxsize=8)
def has_filter(name: str) -> bool:
    """Whether this ffmpeg build has a filter (``subtitles`` needs libass)."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True, text=True,
                             timeout=30, check=False, creationflags=no_window()).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def on_grid(fps: int) -> str:
    """After a join: timestamps back on the episode's frame grid (frame N at N/fps, time base 1/fps)."""
    return f",settb=1/{fps},setpts=N,fps={fps}"


def frames_of(duration: float, fps: int) -> int:
    return max(1, round(duration * fps))


def output_size(width: int, height: int, upscale: bool) -> tuple[int, int]:
    """The episode's size: the project's, or 2x it (at most MAX_SIDE on the long side) when upscaling."""
    if not upscale:
        return width, height
    factor = min(2.0, MAX_SIDE / max(width, height))
    return round(width * factor / 2) * 2, round(height * factor / 2) * 2


def clip_frames(clips: list[Clip], fps: int) -> list[int]:
    """Frames of each clip. Boundaries are rounded on the running total, not clip by clip, so the
    sum stays within half a frame of the summed durations however many clips there are."""
    out, at, edge = [], 0.0, 0
    for clip in clips:
        at += clip.duration
        n = max(1, round(at * fps) - edge)
        edge += n
        out.append(n)
    return out


def fade_frames(clips: list[Clip], fps: int, fade: float) -> list[int]:
    """Frames of the crossfade into each clip (0: a cut). A fade takes at most half of either clip,
    so a clip's fade in and fade out never overlap; clips too short for one frame of it are cut."""
    frames, out = clip_frames(clips, fps), []
    for i, clip in enumerate(clips):
        f = 0
        if i and clip.transition == "crossfade":
            f = min(frames_of(fade, fps), frames[i] // 2, frames[i - 1] // 2)
        out.append(f)
    return out


def plan_timeline(clips: list[Clip], fps: int, fade: float) -> tuple[list[float], int]:
    """(crossfade length into each clip — 0 for a cut, total frames of the episode)."""
    fades = fade_frames(clips, fps, fade)
    return [f / fps for f in fades], sum(clip_frames(clips, fps)) - sum(fades)


def starts(clips: list[Clip], fps: int, fade: float) -> list[int]:
    """The frame at which each clip begins in the episode (its crossfade in starts there)."""
    out, at = [], 0
    for n, f in zip(clip_frames(clips, fps), fade_frames(clips, fps, fade)):
        at -= f
        out.append(at)
        at += n
    return out


def filter_graph(clips: list[Clip], fps: int, width: int, height: int, fade: float, upscale: bool,
                 burn: str = "") -> tuple[str, int]:
    """The video graph (output ``[out]``); ``burn``: a subtitles filter drawn on the finished picture."""
    parts = []
    frames_each = clip_frames(clips, fps)
    for i, n in enumerate(frames_each):
        parts.append(
            f"[{i}:v]fps={fps},scale={width}:{height}:force_original_aspect_ratio=decrease:"
            f"force_divisible_by=2:flags=lanczos,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
            f"format=yuv420p,tpad=stop_mode=clone:stop_duration={n / fps + 1:.3f},"
            f"trim=end_frame={n},settb=1/{fps},setpts=N[c{i}]")
    fades = fade_frames(clips, fps, fade)
    total = sum(frames_each) - sum(fades)
    current, frames = "c0", frames_each[0]
    for i in range(1, len(clips)):
        out = f"j{i}"
        n, f = frames_each[i], fades[i]
        if f:
            parts.append(f"[{current}][c{i}]xfade=transition=fade:duration={f / fps:.6f}:"
                         f"offset={(frames - f) / fps:.6f}{on_grid(fps)}[{out}]")
            frames += n - f
        else:
            # concat hands out microsecond timestamps; xfade wants both inputs on 1/fps (the
            # "exit 234 ... Invalid argument" of a crossfade that follows a cut): back onto the grid
            parts.append(f"[{current}][c{i}]concat=n=2:v=1:a=0{on_grid(fps)}[{out}]")
            frames += n
        current = out
    out_w, out_h = output_size(width, height, upscale)
    tail = f"scale={out_w}:{out_h}:flags=lanczos," if upscale else ""
    tail += f"{burn}," if burn else ""
    parts.append(f"[{current}]{tail}format=yuv420p,setsar=1[out]")
    return ";".join(parts), total


def error_lines(log_text: str, keep: int = 3) -> list[str]:
    """The lines that say why ffmpeg failed: the first few errors (the cause), not the last (the echo)."""
    lines = [ln.strip() for ln in log_text.splitlines() if ln.strip()]
    noise = ("Task finished with error", "Terminating thread", "Nothing was written", "Could not open encoder",
             "Error reinitializing filters", "Failed to configure output pad")
    cause = [ln for ln in lines if not any(n in ln for n in noise)]
    return (cause or lines)[:keep]


def stitch(clips: list[Clip], target: Path, *, fps: int, width: int, height: int, fade: float = 0.5,
           upscale: bool = False, metadata: dict | None = None, progress=None, cancelled=None,
           audio: Path | None = None, audio_filter: str = "anull", subtitles: Path | None = None,
           fontsdir: Path | None = None) -> dict:
    """Write the episode to ``target`` (inside a staging folder); returns frames, fps, size, duration.

    ``audio``: the mixed track (``app.mix``), filtered by ``audio_filter`` (the loudness pass), cut
    or padded to the picture's exact length and encoded AAC 48 kHz stereo; without it the episode is
    silent. ``subtitles``: an .ass file burned in with libass (``fontsdir``: where its font is);
    both must sit in ``target``'s folder (ffmpeg runs there, so no path needs escaping).
    """
    if not clips:
        raise EngineError("Nothing to stitch: the episode has no clips.", "没有可拼接的片段。")
    burn = ""
    if subtitles is not None:
        burn = f"subtitles=filename={subtitles.name}" + (f":fontsdir={fontsdir.name}" if fontsdir else "")
    graph, total = filter_graph(clips, fps, width, height, fade, upscale, burn)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
           "-progress", "pipe:1"]
    for clip in clips:
        cmd += ["-i", str(Path(clip.path).resolve())]
    maps = ["-map", "[out]", "-an"]
    if audio is not None:
        cmd += ["-i", str(Path(audio).resolve())]
        n = round(total / fps * 48000)
        graph += (f";[{len(clips)}:a]{audio_filter},aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,"
                  f"apad=whole_len={n},atrim=end_sample={n}[aout]")
        maps = ["-map", "[out]", "-map", "[aout]", "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2"]
    cmd += ["-filter_complex", graph, *maps, "-r", str(fps), "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "veryfast", "-movflags", "+faststart"]
    for key, value in (metadata or {}).items():
        cmd += ["-metadata", f"{key}={value}"]
    cmd.append(str(target.resolve()))
    errlog = target.with_suffix(".ffmpeg.log")
    with open(errlog, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, cwd=target.parent,
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
        detail = error_lines(errlog.read_text(encoding="utf-8", errors="replace"))
        raise EngineError(f"ffmpeg could not stitch the episode (exit {code}): {' | '.join(detail)[:600]}",
                          f"ffmpeg 拼接失败（退出码 {code}）：{' | '.join(detail)[:600]}")
    errlog.unlink(missing_ok=True)
    out_w, out_h = output_size(width, height, upscale)
    return {"frames": total, "fps": fps, "width": out_w, "height": out_h, "duration": total / fps,
            "audio": audio is not None, "subtitles_burned": subtitles is not None}
