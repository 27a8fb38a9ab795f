"""What every speech (``tts``) engine shares: its parameters, its voice table, sentences, audio files.

``SpeechParams``           ``text`` (required, at most ``MAX_TEXT`` characters: a subclass sets its
                           vendor's limit), ``voice`` (``narrator`` / ``male`` / ``female`` or the
                           engine's own id), ``speed`` (1.0 = normal) and ``format`` (``wav`` | ``mp3``).
``Voice``                  one row of an engine's voice table; ``voice_rows(table)`` is what
                           ``Engine.voices()`` returns; ``resolve_voice(name, table, engine_id)`` maps
                           an alias or a native id to the native id (``ValidationError`` otherwise).
``sentences(text)``        the text cut after sentence punctuation (Chinese and Latin), for engines
                           that speak sentence by sentence and time each one.
``write_wav(path, samples, rate)``  float samples in [-1, 1] as 16-bit mono PCM.
``encode(wav, fmt)``       the WAV as it is, or an MP3 beside it (imageio-ffmpeg's ffmpeg, libmp3lame).
``audio_duration(path)``   seconds, counted from the decoded samples (PyAV): exact for WAV and MP3.
``speech_output(path, timings=None, meta=None)``  the ``Output`` of a finished clip.
"""

from __future__ import annotations

import re
import subprocess
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from core.errors import EngineError, ValidationError
from engines.base import Output, Params
from core.platform import no_window

ALIASES = ("narrator", "male", "female")


class SpeechParams(Params):
    MAX_TEXT: ClassVar[int] = 2000

    text: str = Field(..., min_length=1, description="What to say (one line of narration or dialogue)")
    voice: str = Field("narrator", min_length=1, max_length=64,
                       description="narrator, male, female, or one of the engine's own voices (see /engines)")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="Speaking rate: 1.0 is normal, 1.2 is 20% faster")
    format: Literal["wav", "mp3"] = Field("wav", description="Audio file format")

    @field_validator("text")
    @classmethod
    def _text_fits(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("write something to say (the text is empty) / 请填写要朗读的文字")
        if len(text) > cls.MAX_TEXT:
            raise ValueError(f"the text has {len(text)} characters; this engine speaks at most {cls.MAX_TEXT} "
                             f"per line: split it into shorter lines / 文字共 {len(text)} 字，此引擎每句最多 "
                             f"{cls.MAX_TEXT} 字，请拆成几句")
        return text


@dataclass(frozen=True)
class Voice:
    id: str  # the engine's own id
    name: str
    language: str  # zh | en | zh+en
    gender: str  # female | male
    alias: str | None = None  # narrator | male | female


def voice_rows(table: tuple[Voice, ...]) -> list[dict]:
    """Aliases first (each naming the voice it stands for), then every native voice."""
    rows = []
    for alias in ALIASES:
        v = next((v for v in table if v.alias == alias), None)
        if v is not None:
            rows.append({"id": alias, "voice": v.id, "name": v.name, "language": v.language, "gender": v.gender})
    for v in table:
        rows.append({**{k: val for k, val in asdict(v).items() if k != "alias"}, "voice": v.id})
    return rows


def resolve_voice(name: str, table: tuple[Voice, ...], engine_id: str) -> Voice:
    name = name.strip()
    for v in table:
        if name == v.alias or name == v.id:
            return v
    known = ", ".join([*ALIASES, *(v.id for v in table)][:24])
    raise ValidationError(f"{engine_id} has no voice '{name}'. Use one of: {known}.",
                          f"{engine_id} 没有音色“{name}”。可用：{known}。")


_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…\n])|(?<=[.])(?=\s)")


def sentences(text: str) -> list[str]:
    """Cut after 。！？!?；; … and newlines (and a full stop followed by a space); closing quotes stay
    with their sentence; empty pieces are dropped."""
    pieces = [p for p in _SENTENCE_END.split(text) if p]
    out: list[str] = []
    for piece in pieces:
        stripped = piece.strip()
        if not stripped:
            continue
        if out and all(ch in "”’\"')）」』" for ch in stripped):
            out[-1] += stripped
        else:
            out.append(stripped)
    return out


def write_wav(path: Path, samples, rate: int) -> Path:
    import numpy as np

    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
    return path


def encode(wav: Path, fmt: str) -> Path:
    """``wav``: the file itself; ``mp3``: an MP3 beside it (the WAV is removed)."""
    if fmt == "wav":
        return wav
    import imageio_ffmpeg

    mp3 = wav.with_suffix(".mp3")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav),
           "-codec:a", "libmp3lame", "-b:a", "128k", str(mp3)]
    done = subprocess.run(cmd, capture_output=True, text=True, creationflags=no_window())
    if done.returncode != 0 or not mp3.is_file():
        raise EngineError(f"ffmpeg could not encode the MP3 (exit {done.returncode}): {done.stderr.strip()[-300:]}",
                          f"ffmpeg 无法编码 MP3（退出码 {done.returncode}）。")
    wav.unlink(missing_ok=True)
    return mp3


def audio_duration(path: Path) -> float:
    """Seconds of audio in the file, from its decoded samples."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            rate = stream.codec_context.sample_rate or stream.rate
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise EngineError(f"The speech file could not be read ({type(exc).__name__}).",
                          f"无法读取语音文件（{type(exc).__name__}）。") from exc
    if not rate or not samples:
        raise EngineError("The speech file holds no audio.", "语音文件中没有音频。")
    return samples / float(rate)


def speech_output(path: Path, timings: list | None = None, meta: dict | None = None) -> Output:
    return Output(path=path, kind="audio", duration=audio_duration(path), timings=timings, meta=dict(meta or {}))
