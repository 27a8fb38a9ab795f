"""The three files of a project, as strict pydantic models (unknown fields are errors).

    project.yaml     ProjectConfig   title, style, engines, fps, resolution, negative prompt, seeds...
    characters.yaml  CharactersFile  characters: {id: Character}
    scenes.yaml      ScenesFile      scenes: [Scene, ...] in playing order

Speech, subtitles and music (all optional; a project without them renders silent, as before):
scenes have ``narration`` and ``lines`` ({character, text, at?}); characters and the project's
``narrator_voice`` have a ``voice`` ({engine, voice, speed}); project.yaml has ``timing``,
``speech_padding``, ``subtitles``, ``subtitle_style``, ``music``, ``music_volume``, ``ducking``
and ``clip_audio``. Default voices (engine ``local-tts``) are named in ``profiles/voices.py``.

Ids (projects, characters, scenes) are slugs: letters, digits, ``-`` and ``_`` — never a path.
Files a project refers to (reference faces, keyframes) are relative paths inside its ``assets/``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .styles import STYLES

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
SLUG = re.compile(SLUG_PATTERN)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".aac", ".ogg", ".opus", ".flac")
_PART = re.compile(r"^[\w\u4e00-\u9fff][\w\u4e00-\u9fff .-]{0,99}$")

ENGINE_ALIASES = {"instantid": "sdxl-instantid", "svd": "svd-xt", "wan": "wan2.1-t2v-1.3b",
                  "wan-i2v": "wan2.1-i2v-480p"}  # seed 000 names its engines briefly


def _inside_assets(value: str, example: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if (value.startswith(("/", "\\")) or ":" in value or len(value) > 200
            or any(p in ("", ".", "..") or not _PART.match(p) for p in parts)):
        raise ValueError(f"must be a relative path inside assets/ (like '{example}'), without '..'")
    return "/".join(parts)


def _asset_path(value: str) -> str:
    """A relative path inside ``assets/`` to an image: no '..', no absolute or drive paths."""
    value = _inside_assets(value, "hanli/face.png")
    if not value.lower().endswith(IMAGE_SUFFIXES):
        raise ValueError(f"must be an image file ({', '.join(IMAGE_SUFFIXES)})")
    return value


def _audio_path(value: str) -> str:
    """Music under ``assets/``: written 'assets/theme.mp3' or 'theme.mp3'; kept without the prefix."""
    value = value.strip()
    value = value[len("assets/"):] if value.replace("\\", "/").startswith("assets/") else value
    value = _inside_assets(value, "assets/music/theme.mp3")
    if not value.lower().endswith(AUDIO_SUFFIXES):
        raise ValueError(f"must be an audio file ({', '.join(AUDIO_SUFFIXES)})")
    return value


def _file_name(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.ya?ml$", value):
        raise ValueError("must be a plain .yaml file name in the project folder")
    return value


def _resolution(value: str) -> str:
    m = re.match(r"^(\d{2,4})x(\d{2,4})$", value.strip().lower())
    if not m:
        raise ValueError("must be 'WIDTHxHEIGHT', e.g. '832x480'")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 3840 and 16 <= h <= 3840) or w % 2 or h % 2:
        raise ValueError("width and height must be even numbers from 16 to 3840")
    return f"{w}x{h}"


Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="letters, digits, '-' or '_'")]
AssetPath = Annotated[str, AfterValidator(_asset_path)]
AudioPath = Annotated[str, AfterValidator(_audio_path)]
FileName = Annotated[str, AfterValidator(_file_name)]
Transition = Literal["cut", "crossfade"]
StyleId = Literal[tuple(STYLES)]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Voice(_Strict):
    engine: str = Field(..., min_length=1, max_length=64, description="Text-to-speech engine id, e.g. local-tts")
    voice: str = Field(..., min_length=1, max_length=100, description="A voice of that engine (/engines lists them)")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="1.0 is the voice's own pace")


class SubtitleStyle(_Strict):
    font: str = Field("", max_length=100, description="Font family; empty: a Chinese (CJK) font found on the system")
    size: int = Field(0, ge=0, le=200, description="Text height in pixels of the episode; 0: about 1/16 of its height")
    position: Literal["bottom", "top", "middle"] = Field("bottom", description="Where cues sit")
    outline: float = Field(2.0, ge=0, le=10, description="Outline width in pixels")


class ProjectConfig(_Strict):
    title: str = Field(..., min_length=1, max_length=200, description="Shown in the Projects tab and renders")
    description: str = Field("", max_length=2000)
    style: StyleId = Field("xianxia", description="Style preset added to every prompt")
    default_engine: str | None = Field(None, max_length=64, description="One engine for every clip it can make "
                                       "(a still engine such as instantid sets the stills instead)")
    still_engine: str = Field("sdxl-instantid", max_length=64, description="Character stills from reference faces")
    i2v_engine: str = Field("svd-xt", max_length=64, description="Clips animated from a still or keyframe")
    t2v_engine: str = Field("wan2.1-t2v-1.3b", max_length=64, description="Clips of scenes without a still")
    fps: int = Field(16, ge=1, le=60, description="Frames per second of the episode")
    resolution: Annotated[str, AfterValidator(_resolution)] = Field("832x480", description="Episode size 'WxH'")
    negative_prompt: str = Field("", max_length=2000)
    seed: int = Field(20240601, ge=0, le=2**31 - 1, description="Base seed; each scene derives its own from it")
    seed_policy: Literal["fixed", "random"] = Field(
        "fixed", description="fixed: same seeds every render (unchanged scenes are reused); random: new seeds")
    upscale: bool = Field(False, description="Upscale the stitched episode 2x (Lanczos)")
    transition: Transition = Field("cut", description="Default transition between scenes")
    transition_duration: float = Field(0.5, gt=0, le=3, description="Crossfade length in seconds")
    engine_params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                     description="engine id -> parameters for its jobs")
    narrator_voice: Voice | None = Field(None, description="Voice of each scene's narration; empty: the default")
    timing: Literal["voice", "fixed"] = Field(
        "voice", description="voice: a scene lasts at least as long as its speech; fixed: speech must fit the scene")
    speech_padding: float = Field(0.3, ge=0, le=5,
                                  description="Seconds of quiet after a scene's speech (timing: voice)")
    subtitles: Literal["burn", "file", "off"] = Field(
        "file", description="file: .srt/.ass beside the MP4; burn: also drawn into the video; off: none")
    subtitle_style: SubtitleStyle = Field(default_factory=SubtitleStyle)
    music: AudioPath | None = Field(None, description="Background music under assets/, looped or cut to the episode")
    music_volume: float = Field(0.3, ge=0, le=1, description="Music level against speech (1: as loud as the voices)")
    ducking: bool = Field(True, description="Lower the music (and clip sound) while anyone speaks")
    clip_audio: Literal["keep", "mute"] = Field("keep", description="Sound that comes with clips: keep it under "
                                                "the speech, or mute it")
    character_profiles: FileName = Field("characters.yaml", description="seed 000 name of the characters file")
    scene_profiles: FileName = Field("scenes.yaml", description="seed 000 name of the scenes file")

    @field_validator("default_engine", "still_engine", "i2v_engine", "t2v_engine")
    @classmethod
    def _alias(cls, v):
        return ENGINE_ALIASES.get(v, v) if v else v

    @property
    def size(self) -> tuple[int, int]:
        w, h = self.resolution.split("x")
        return int(w), int(h)


class Character(_Strict):
    name: str = Field(..., min_length=1, max_length=100)
    prompt: str = Field("", max_length=1000, description="Words added to every scene this character is in")
    description: str = Field("", max_length=2000, description="Notes for people; not sent to engines")
    reference_images: list[AssetPath] = Field(default_factory=list, max_length=8,
                                              description="Face photos under assets/ (the first is used)")
    instantid_strength: float = Field(0.8, ge=0.0, le=1.5, description="How strongly the face is kept")
    voice: Voice | None = Field(None, description="How this character speaks; empty: the default voice")


class CharactersFile(_Strict):
    characters: dict[Slug, Character] = Field(default_factory=dict)


class Line(_Strict):
    character: Slug = Field(..., description="Who speaks: a character id from characters.yaml")
    text: str = Field(..., min_length=1, max_length=500)
    at: float | None = Field(None, ge=0, le=600, description="Seconds into the scene; empty: after the line before")


class Scene(_Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)

    id: Slug
    title: str = Field("", max_length=200)
    prompt: str = Field(..., min_length=1, max_length=2000)
    negative_prompt: str = Field("", max_length=1000, description="Added to the project's negative prompt")
    characters: list[Slug] = Field(default_factory=list, max_length=8)
    duration: float = Field(5.0, gt=0, le=60, description="Seconds")
    engine: str | None = Field(None, max_length=64, description="Clip engine for this scene only")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Empty: derived from the project seed")
    camera: str = Field("", max_length=300, description="Camera hint, e.g. 'slow push in'")
    motion: str = Field("", max_length=300, description="Motion hint, e.g. 'robes flutter in the wind'")
    transition: Transition | None = Field(None, description="Into this scene from the one before; empty: project's")
    keyframe: AssetPath | None = Field(None, description="An image under assets/ used as the first frame")
    params: dict[str, Any] = Field(default_factory=dict, description="Clip engine parameters for this scene")
    narration: str = Field("", max_length=2000, description="What the narrator says over this scene")
    lines: list[Line] = Field(default_factory=list, max_length=40, description="Dialogue, after the narration")
    continue_: bool = Field(False, alias="continue",
                            description="Start from the last frame of the previous scene's clip (shot continuity)")
    from_: str | None = Field(None, alias="from", max_length=80,
                              description="Reuse a clip instead of rendering: a scene id, or job:<task id>")

    @field_validator("from_")
    @classmethod
    def _from(cls, v):
        if v is None or not v.strip():
            return None
        v = v.strip()
        if not (SLUG.match(v) or re.match(r"^job:[A-Za-z0-9_-]{1,64}$", v)):
            raise ValueError("must be a scene id or job:<task id>")
        return v

    @field_validator("engine")
    @classmethod
    def _alias(cls, v):
        return ENGINE_ALIASES.get(v, v) if v else v


class ScenesFile(_Strict):
    scenes: list[Scene] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _unique_ids(self):
        seen: set[str] = set()
        for scene in self.scenes:
            if scene.id in seen:
                raise ValueError(f"scene id '{scene.id}' is used twice; give each scene its own id")
            seen.add(scene.id)
        return self
