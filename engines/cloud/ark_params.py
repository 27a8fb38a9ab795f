"""What an Ark (Seedance) request may ask for: parameters and seed 003's prompt flags (the models and
their limits are data: ``engines/cloud/models/ark.yaml``).

``parse_prompt_flags`` is pure: ``"仙鹤 --duration 5 --rs 720p"`` → ``("仙鹤", {"duration": 5,
"resolution": "720p"})``. ``resolve_fields`` merges those flags with explicit parameters; a
flag that disagrees with a parameter is an error, never silently dropped.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic import ValidationError as PydanticError

from core.errors import ValidationError, pydantic_message
from engines.base import Params
from engines.cloud import modeltable

RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
ENDPOINT_ID = re.compile(r"^ep-[0-9A-Za-z][0-9A-Za-z-]{2,62}$")
MODEL_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{1,63}$")

_ALL_RES = ("480p", "720p", "1080p")
FLAG_NAMES = {"duration": "duration", "dur": "duration", "ratio": "ratio", "rt": "ratio", "resolution": "resolution",
              "rs": "resolution", "seed": "seed", "watermark": "watermark", "wm": "watermark",
              "camerafixed": "camera_fixed", "camera_fixed": "camera_fixed", "cf": "camera_fixed"}
FIELDS = ("resolution", "ratio", "duration", "watermark", "camera_fixed", "generate_audio", "return_last_frame")
_FLAG = re.compile(r"(?<!\S)--([A-Za-z_]+)\s+(\S+)")


class ArkParams(Params):
    model: str = Field("doubao-seedance-1-0-pro-250528", max_length=64,
                       description="Seedance model id (engines/cloud/models/ark.yaml) or your endpoint id (ep-...)",
                       json_schema_extra={"choices": modeltable.model_choices("ark")})
    resolution: str | None = Field(None, description="480p, 720p or 1080p")
    ratio: str | None = Field(None, description="16:9, 4:3, 1:1, 3:4, 9:16, 21:9 or adaptive")
    duration: int | None = Field(None, ge=-1, le=15, description="Seconds of video (by model; -1 lets 2.0 choose)")
    seed: int = Field(-1, ge=-1, le=2**32 - 1, description="Seed; -1 for a random one (the one used is recorded)")
    watermark: bool | None = Field(None, description="Add Ark's AI-generated watermark")
    camera_fixed: bool | None = Field(None, description="Keep the camera still")
    generate_audio: bool | None = Field(None, description="Make sound with the video (Seedance 1.5 / 2.0; on by "
                                                          "default there)")
    return_last_frame: bool | None = Field(None, description="Also return the video's last frame as an image (to "
                                                             "start the next shot from)")
    reference_videos: list[str] = Field(default_factory=list, max_length=3,
                                        description="Seedance 2.0: reference video URLs (at most 3)")
    reference_audios: list[str] = Field(default_factory=list, max_length=3,
                                        description="Seedance 2.0: reference audio URLs (at most 3)")

    @field_validator("model")
    @classmethod
    def _model_id(cls, v: str) -> str:
        if not MODEL_ID.match(v):
            raise ValueError("a Seedance model id (doubao-seedance-...) or an endpoint id ep-...")
        return v

    @field_validator("reference_videos", "reference_audios")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("http://", "https://", "asset://")):
                raise ValueError("reference videos and audio are public URLs (http:// or https://)")
        return v

    @field_validator("resolution")
    @classmethod
    def _res(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in _ALL_RES:
            raise ValueError("use 480p, 720p or 1080p")
        return v.lower() if v else v

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: str | None) -> str | None:
        if v is not None and v not in RATIOS:
            raise ValueError(f"use one of {', '.join(RATIOS)}")
        return v


# --- seed 003's prompt flags --------------------------------------------------------
def _flag_value(field: str, raw: str):
    low = raw.lower()
    if field in ("watermark", "camera_fixed"):
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError("true or false")
    if field in ("duration", "seed"):
        return int(raw)
    if field == "resolution":
        return low
    return raw


def parse_prompt_flags(prompt: str) -> tuple[str, dict]:
    """Split ``--duration 5 --ratio 16:9 --rs 720p --seed 1 --wm false --cf false`` out of a prompt.

    Returns the prompt without the known flags and ``{field: value}`` (Ark field names).
    Unknown ``--words`` stay in the text. A bad value raises ``ValidationError``.
    """
    flags: dict = {}

    def take(m: re.Match) -> str:
        field = FLAG_NAMES.get(m.group(1).lower())
        if field is None:
            return m.group(0)
        try:
            value = _flag_value(field, m.group(2))
        except ValueError as exc:
            raise ValidationError(f"Prompt flag --{m.group(1)} {m.group(2)}: expected {exc or 'a number'}.",
                                  f"提示词参数 --{m.group(1)} {m.group(2)} 无效。") from exc
        if field in flags and flags[field] != value:
            raise ValidationError(f"The prompt sets --{m.group(1)} twice with different values.",
                                  f"提示词中 --{m.group(1)} 出现了两次且取值不同。")
        flags[field] = value
        return ""

    text = _FLAG.sub(take, prompt)
    if not flags:
        return prompt, flags
    return re.sub(r"[ \t]{2,}", " ", text).strip(), flags


def resolve_fields(prompt: str, params: ArkParams) -> tuple[str, dict]:
    """Prompt text and the Ark fields to send: explicit params, filled in by prompt flags.

    A flag that disagrees with an explicit parameter is an error (nothing is silently dropped).
    """
    text, flags = parse_prompt_flags(prompt)
    fields = {k: getattr(params, k) for k in FIELDS if getattr(params, k) is not None}
    if params.seed != -1:
        fields["seed"] = params.seed
    if flags.get("seed") == -1:  # "--seed -1" means random, like the default
        del flags["seed"]
    for key, value in flags.items():
        if key in fields and fields[key] != value:
            raise ValidationError(f"The prompt says --{key} {value} but the parameters say {key}={fields[key]}; "
                                  "remove one of them.", f"提示词中 --{key} {value} 与参数 {key}={fields[key]} 冲突，"
                                  "请删除其一。")
        fields[key] = value
    try:  # flags go through the same rules as parameters
        ArkParams.model_validate({**fields, "model": params.model})
    except PydanticError as exc:
        raise ValidationError(*pydantic_message(exc)) from exc
    return text, fields
