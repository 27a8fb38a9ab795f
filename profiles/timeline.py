"""Where everything sits in an episode: scenes on the frame grid, speech inside its scene (pure functions).

    Utterance(path, duration, timings=[(start, end, text)], text, speaker, at)   one synthesised line
    SceneInput(id, duration, transition, utterances)                           a scene before planning
    plan(scenes, fps=, fade=, timing="voice"|"fixed", padding=0.3) -> Timeline  raises TimingError
    estimate_seconds(text, speed) -> float                                     speech length before TTS ran

Rules:

* Scene ``i`` starts at its crossfade in (the frame the stitch starts blending it in) and lasts a
  whole number of frames. Its utterances play in order from the scene's start, ``GAP`` seconds
  apart; a line with ``at`` starts ``at`` seconds into the scene instead (later lines follow it).
* Speech must end before the next scene starts fading in, so two scenes never talk at once.
* ``timing: voice`` — a scene lasts at least its speech + ``padding`` (+ the crossfade out); the
  stitch holds the clip's last frame for the extra time. ``fixed`` — the durations stand, and a
  scene whose speech does not fit is an error (``TimingError``, naming every such scene) before
  anything renders.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ValidationError
from core.stitch import Clip, fade_frames, frames_of

GAP = 0.2  # seconds between two utterances of a scene
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
PAUSE = re.compile(r"[，。！？；：、,.!?;:…]")


class TimingError(ValidationError):
    """Speech does not fit a fixed-length scene."""


@dataclass(frozen=True)
class Utterance:
    """One synthesised line: what a TTS job hands the stitch (``timings`` relative to the file's start)."""

    path: Path | None
    duration: float
    timings: tuple[tuple[float, float, str], ...] = ()
    text: str = ""
    speaker: str = ""
    at: float | None = None

    def to_json(self) -> dict:
        return {"path": str(self.path) if self.path else None, "duration": self.duration,
                "timings": [list(t) for t in self.timings], "text": self.text, "speaker": self.speaker, "at": self.at}

    @classmethod
    def from_json(cls, data: dict, root: Path | None = None) -> Utterance:
        path = data.get("path")
        if path and root is not None and not Path(path).is_absolute():
            path = root / path
        return cls(Path(path) if path else None, float(data["duration"]),
                   tuple((float(a), float(b), str(t)) for a, b, t in data.get("timings") or ()),
                   data.get("text", ""), data.get("speaker", ""), data.get("at"))


@dataclass(frozen=True)
class SceneInput:
    id: str
    duration: float
    transition: str = "cut"  # into this scene
    utterances: tuple[Utterance, ...] = ()


@dataclass(frozen=True)
class PlacedSpeech:
    scene: str
    utterance: Utterance
    start: float  # seconds in the episode
    end: float


@dataclass(frozen=True)
class PlacedScene:
    id: str
    start_frame: int  # where its crossfade in begins
    frames: int
    fade_in: int  # frames shared with the scene before
    speech: tuple[PlacedSpeech, ...]
    fps: int

    @property
    def start(self) -> float:
        return self.start_frame / self.fps

    @property
    def end(self) -> float:
        return (self.start_frame + self.frames) / self.fps

    @property
    def duration(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Timeline:
    fps: int
    fade: float
    scenes: tuple[PlacedScene, ...]
    total_frames: int
    extended: tuple[str, ...] = field(default=())  # scenes lengthened to fit their speech

    @property
    def duration(self) -> float:
        return self.total_frames / self.fps

    @property
    def speech(self) -> list[PlacedSpeech]:
        return [s for scene in self.scenes for s in scene.speech]

    def clips(self, paths: list[Path], transitions: list[str]) -> list[Clip]:
        """The stitch's clips for these scenes (in order), at their planned lengths."""
        return [Clip(p, s.duration, t) for p, s, t in zip(paths, self.scenes, transitions)]


def place(utterances: tuple[Utterance, ...] | list[Utterance]) -> list[tuple[Utterance, float, float]]:
    """(utterance, start, end) in seconds from the scene's start."""
    out, cursor = [], 0.0
    for u in utterances:
        start = u.at if u.at is not None else (cursor + GAP if out else 0.0)
        out.append((u, start, start + u.duration))
        cursor = max(cursor, start + u.duration)
    return out


def speech_end(utterances) -> float:
    return max((end for _u, _s, end in place(utterances)), default=0.0)


def plan(scenes: list[SceneInput], *, fps: int, fade: float, timing: str = "voice",
         padding: float = 0.3) -> Timeline:
    if not scenes:
        raise ValidationError("Nothing to plan: the episode has no scenes.", "剧集没有场景。")
    nominal_fade = frames_of(fade, fps) / fps
    durations, extended, misfits = [], [], []
    for i, scene in enumerate(scenes):
        fade_out = nominal_fade if i + 1 < len(scenes) and scenes[i + 1].transition == "crossfade" else 0.0
        frames = max(1, round(scene.duration * fps))
        end = speech_end(scene.utterances)
        if scene.utterances:
            if timing == "voice":
                need = math.ceil((end + padding + fade_out) * fps - 1e-6)
                if need > frames:
                    frames = need
                    extended.append(scene.id)
            elif end + fade_out > frames / fps + 0.5 / fps:
                misfits.append((scene, end, fade_out))
        durations.append(frames / fps)
    if misfits:
        raise _misfit_error(misfits)
    clips = [Clip(Path(s.id), d, s.transition if i else "cut") for i, (s, d) in enumerate(zip(scenes, durations))]
    fades = fade_frames(clips, fps, fade)
    placed, at = [], 0
    for scene, clip, f in zip(scenes, clips, fades):
        at -= f
        n = round(clip.duration * fps)
        t0 = at / fps
        speech = tuple(PlacedSpeech(scene.id, u, t0 + s, t0 + e) for u, s, e in place(scene.utterances))
        placed.append(PlacedScene(scene.id, at, n, f, speech, fps))
        at += n
    return Timeline(fps, fade, tuple(placed), at, tuple(extended))


def _misfit_error(misfits) -> TimingError:
    en, zh = [], []
    for scene, end, fade_out in misfits:
        need = end + fade_out
        tail = f" (+{fade_out:g} s crossfade into the next scene)" if fade_out else ""
        en.append(f"scene '{scene.id}' has {end:.1f} s of speech{tail} but lasts {scene.duration:g} s")
        zh.append(f"场景“{scene.id}”的语音长 {end:.1f} 秒，但场景只有 {scene.duration:g} 秒（至少需要 {need:.1f} 秒）")
    return TimingError(
        "Speech does not fit with timing: fixed — " + "; ".join(en) + ". Fix: make those scenes longer, shorten "
        "their narration or lines, or set timing: voice in project.yaml (scenes then last as long as their speech).",
        "固定时长（timing: fixed）下语音放不下：" + "；".join(zh) + "。请加长这些场景、缩短旁白或台词，或在 project.yaml 中"
        "设置 timing: voice（场景会随语音加长）。")


def estimate_seconds(text: str, speed: float = 1.0) -> float:
    """A typical voice's length for ``text``: ~4.5 CJK characters or ~2.8 Latin words a second, plus pauses."""
    cjk = len(CJK.findall(text))
    words = len(re.findall(r"[A-Za-z0-9']+", CJK.sub(" ", text)))
    pauses = len(PAUSE.findall(text.rstrip("，。！？；：、,.!?;:… ")))
    return (cjk / 4.5 + words / 2.8 + pauses * 0.25) / max(speed, 0.1)
