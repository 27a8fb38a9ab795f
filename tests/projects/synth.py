"""Small synthetic media for stitch and mix tests (and bench/episode.py), written with PyAV.

    make_clip(path, seconds, fps, width, height, audio=None, codec="h264")   a video, maybe with sound
    make_tone(path, seconds, freq, bursts=..., rate=24000)                   a speech stand-in (WAV)
    make_music(path, seconds, rate=44100)                                    a steady chord (WAV/MP3)
    probe_av(path) -> dict                                                   streams, durations, frames
    rms_db(path, start, end) / loudness(path) -> (integrated LUFS, true peak dBTP)
"""

from __future__ import annotations

import json
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from core.stitch import ffmpeg_exe

# codec, pixel format: what vendors hand out, and what odd sizes need (4:2:0 wants even sizes)
CODECS = {"h264": ("libx264", "yuv420p"), "h264-444": ("libx264", "yuv444p"), "mpeg4": ("mpeg4", "yuv420p")}


def make_clip(path: Path, seconds: float, fps: float, width: int, height: int, audio: dict | None = None,
              codec: str = "h264", seed: int = 0) -> Path:
    """A moving gradient (each frame different) at ``fps``; ``audio``: {"rate", "channels", "seconds", "freq"}."""
    import av

    name, pix_fmt = CODECS[codec]
    if pix_fmt == "yuv420p":
        width, height = width + width % 2, height + height % 2
    frames = max(1, round(seconds * fps))
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, 3)
    x = np.linspace(0, 1, width)[None, :, None]
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream(name, rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        if name == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "30"}
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=audio.get("rate", 44100))
            astream.layout = "stereo" if audio.get("channels", 2) == 2 else "mono"
        for i in range(frames):
            img = np.clip(base + 55 * x + (i * 7) % 50, 0, 255).astype(np.uint8)
            img = np.broadcast_to(img, (height, width, 3)).copy()
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if astream is not None:
            _write_audio(out, astream, tone(audio.get("seconds", seconds), audio.get("freq", 330.0),
                                            astream.rate, astream.layout.nb_channels, 0.3))
    return path


def tone(seconds: float, freq: float, rate: int, channels: int = 1, amp: float = 0.3,
         bursts: list[tuple[float, float]] | None = None) -> np.ndarray:
    """(channels, samples) float32: a sine with a little noise, only inside ``bursts`` when given."""
    n = max(1, round(seconds * rate))
    t = np.arange(n) / rate
    sig = amp * np.sin(2 * np.pi * freq * t) + 0.02 * np.random.default_rng(1).standard_normal(n)
    if bursts is not None:
        mask = np.zeros(n)
        for a, b in bursts:
            mask[int(a * rate):int(b * rate)] = 1.0
        sig = sig * mask
    return np.repeat(sig[None, :].astype(np.float32), channels, axis=0)


def _write_audio(container, stream, samples: np.ndarray) -> None:
    import av

    fmt = "fltp"
    layout = "stereo" if samples.shape[0] == 2 else "mono"
    step = 1024
    for i in range(0, samples.shape[1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + step]), format=fmt, layout=layout)
        frame.sample_rate = stream.rate
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_tone(path: Path, seconds: float, freq: float = 220.0, bursts: list[tuple[float, float]] | None = None,
              rate: int = 24000, amp: float = 0.3) -> Path:
    """A mono 16-bit WAV: speech stand-in (sine bursts with pauses, like words)."""
    import wave

    samples = tone(seconds, freq, rate, 1, amp, bursts)[0]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def make_music(path: Path, seconds: float, rate: int = 44100, amp: float = 0.2) -> Path:
    """A steady stereo chord, as WAV (or any container ffmpeg guesses from the suffix)."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    sig = sum(amp / 3 * np.sin(2 * np.pi * f * t) for f in (523.25, 659.25, 783.99))
    wav = path.with_suffix(".src.wav") if path.suffix.lower() != ".wav" else path
    import wave

    with wave.open(str(wav), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.repeat(sig[:, None], 2, axis=1) * 32767).astype("<i2").tobytes())
    if wav != path:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), str(path)], check=True)
        wav.unlink()
    return path


def probe_av(path: Path) -> dict:
    """Video: codec, size, fps, decoded frame count; audio: codec, rate, channels, decoded seconds."""
    import av

    out: dict = {"video": None, "audio": None}
    with av.open(str(path)) as c:
        if c.streams.video:
            vs = c.streams.video[0]
            frames = sum(1 for _ in c.decode(vs))
            out["video"] = {"codec": vs.codec_context.name, "width": vs.codec_context.width,
                            "height": vs.codec_context.height, "pix_fmt": vs.codec_context.pix_fmt,
                            "fps": float(vs.average_rate), "frames": frames}
    with av.open(str(path)) as c:
        if c.streams.audio:
            st = c.streams.audio[0]
            samples = sum(f.samples for f in c.decode(st))
            out["audio"] = {"codec": st.codec_context.name, "rate": st.rate, "channels": st.channels,
                            "seconds": samples / st.rate}
    return out


def decode_audio(path: Path, rate: int = 48000) -> np.ndarray:
    """Mono float32 samples of the first audio stream at ``rate`` (encoder delay removed by ffmpeg)."""
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar",
                           str(rate), "-f", "f32le", "-"], check=True, capture_output=True)
    return np.frombuffer(proc.stdout, np.float32)


def rms_db(samples: np.ndarray, start: float, end: float, rate: int = 48000) -> float:
    part = samples[int(start * rate):int(end * rate)]
    return float(20 * np.log10(np.sqrt(np.mean(part.astype(np.float64) ** 2)) + 1e-12))


def loudness(path: Path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) from ffmpeg's ebur128 filter."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
                           "-af", "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True)
    summary = proc.stderr[proc.stderr.rfind("Summary:"):]
    integrated = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


def dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
