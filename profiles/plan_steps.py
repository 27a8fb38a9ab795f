"""What a plan is made of: an episode's scenes and each scene's steps (the job requests), with the
placeholders a request carries until the step it waits for has run. Plain data, stored in the
episode job as JSON (``EpisodePlan.to_json`` / ``from_json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from profiles import timeline
from profiles.timeline import SceneInput, Utterance

STILL_PLACEHOLDER = "@still"  # the clip's first frame: the still job's image, known once it ran
LAST_FRAME_PREFIX = "@last_of:"  # the clip's first frame: the last frame of that scene's clip (``continue: true``)


def last_frame_of(value) -> str | None:
    """The scene whose clip's last frame a request image waits for, or None."""
    return value[len(LAST_FRAME_PREFIX):] if isinstance(value, str) and value.startswith(LAST_FRAME_PREFIX) else None


@dataclass
class StepPlan:
    step: str  # still | clip | tts<line index>
    engine: str
    request: dict  # a JobService.submit request (the clip's image may be STILL_PLACEHOLDER)


@dataclass
class ScenePlan:
    scene: str
    title: str
    duration: float
    seed: int
    task: str  # t2v | i2v
    prompt: str
    negative_prompt: str
    transition: str  # into this scene: cut | crossfade
    steps: list[StepPlan]
    notes: list[str] = field(default_factory=list)
    speech: list[dict] = field(default_factory=list)  # profiles.voices.SpeechLine as JSON, + "estimate" (s)


@dataclass
class EpisodePlan:
    project: str
    title: str
    name: str
    fps: int
    width: int
    height: int
    upscale: bool
    transition_duration: float
    scenes: list[ScenePlan]
    audio: dict = field(default_factory=dict)  # timing, padding, subtitles, style, music (project-relative), mix

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "EpisodePlan":
        scenes = [ScenePlan(**{**s, "steps": [StepPlan(**st) for st in s["steps"]]}) for s in data["scenes"]]
        return cls(**{**data, "scenes": scenes})

    @property
    def duration(self) -> float:
        """Seconds of the episode; with ``timing: voice``, scenes lengthened to their estimated speech."""
        if (self.audio or {}).get("timing", "voice") == "voice" and any(s.speech for s in self.scenes):
            scenes = [SceneInput(s.scene, s.duration, s.transition,
                                 tuple(Utterance(None, line["estimate"], at=line["at"]) for line in s.speech))
                      for s in self.scenes]
            return timeline.plan(scenes, fps=self.fps, fade=self.transition_duration, timing="voice",
                                 padding=self.audio.get("speech_padding", 0.3)).duration
        cuts = sum(s.duration for s in self.scenes)
        fades = sum(min(self.transition_duration, s.duration / 2) for s in self.scenes[1:] if s.transition == "crossfade")
        return cuts - fades
