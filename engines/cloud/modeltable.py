"""Cloud model tables: what each vendor's models take, kept as data (``engines/cloud/models/<engine>.yaml``).

A table lists a vendor's model ids and, per model, its tasks, resolutions / sizes / ratios,
durations, the optional fields it accepts, whether it makes sound, how many reference images
(videos, audio clips) it takes, and its price with the date and the page it was read from.
Adding next month's model is a data edit: a new entry in the YAML file (and a test).

``load(engine_id) -> ModelTable``             the packaged table (validated strictly, cached)
``for_settings(engine_id, settings)``         the packaged table, plus the entries of
                                              ``<workspace>/cloud_models/<engine_id>.yaml`` when that
                                              file exists (a model that shipped yesterday, added by hand)
``ModelTable.spec(model, allow_unknown=False) -> ModelSpec | None``
    The model's entry. An id missing from the table raises ``ValidationError`` naming the table
    file(s) and the known ids, unless ``allow_unknown`` (the ``allow_unknown_models`` setting):
    then ``None`` comes back and the adapter applies only its generic checks.
"""

from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticError

from core.errors import ConfigError, ValidationError, pydantic_message

TABLE_DIR = Path(__file__).with_name("models")
WORKSPACE_DIR = "cloud_models"
Task = Literal["t2v", "i2v", "kf2v", "ref2v", "t2i"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    per: Literal["second", "video", "image", "token_k"]  # per second of video, per video or image, per 1000 tokens
    amount: float = Field(ge=0)
    currency: Literal["CNY", "USD"] = "CNY"
    date: _dt.date  # when the price was read
    source: str = Field(min_length=8)  # the page it was read from
    note: str | None = None


class ModelSpec(_Strict):
    tasks: tuple[Task, ...] = Field(min_length=1)
    resolutions: tuple[str, ...] = ()  # empty: the model has no resolution setting
    sizes: tuple[str, ...] = ()  # "W*H" / "WxH" frame sizes it makes
    ratios: tuple[str, ...] = ()  # aspect ratios it takes
    durations: tuple[int, ...] = ()  # seconds it makes; empty: the vendor decides
    duration_auto: bool = False  # -1 lets the model choose the length
    fields: tuple[str, ...] = ()  # optional request fields this model accepts (adapter names)
    audio: Literal["none", "optional", "always"] = "none"  # does the video come back with sound
    audio_default: bool = False  # with "optional": on unless switched off
    max_refs: int = Field(0, ge=0)  # reference images
    max_ref_videos: int = Field(0, ge=0)
    max_ref_audios: int = Field(0, ge=0)
    max_files: int | None = Field(None, ge=1)  # all input images together (Tencent FileInfos)
    versions: tuple[str, ...] = ()  # Tencent: ModelVersion values, the first is the default
    shape: str | None = None  # vendor body shape (DashScope: "media" for wan2.7's input.media[]; text-to-image:
    # "area" when the size rule is total pixels rather than each side)
    max_prompt: int | None = Field(None, ge=1)  # characters of prompt the model takes
    max_images: int | None = Field(None, ge=1)  # images one task makes
    unconfirmed: tuple[str, ...] = ()  # limits not confirmed in the vendor's docs
    price: Price | None = None

    @model_validator(mode="after")
    def _audio_default(self) -> "ModelSpec":
        if self.audio_default and self.audio != "optional":
            raise ValueError("audio_default needs audio: optional")
        return self


class ModelTable(_Strict):
    vendor: str
    engine: str
    source: str  # the vendor's model list page
    checked: _dt.date  # when the table was last checked against it
    models: dict[str, ModelSpec] = Field(min_length=1)
    files: tuple[str, ...] = ()  # where it was read from (filled in by the loader)

    def ids(self) -> list[str]:
        return list(self.models)

    def spec(self, model: str, allow_unknown: bool = False) -> ModelSpec | None:
        found = self.models.get(model)
        if found is not None or allow_unknown:
            return found
        where = " + ".join(self.files) or f"{self.engine}.yaml"
        known = ", ".join(self.models)
        raise ValidationError(
            f"{self.vendor}: unknown model '{model}'. The model table ({where}) knows: {known}. Add the model to "
            "the table, or set allow_unknown_models: true in config.yaml to send it with only basic checks.",
            f"{self.vendor}：未知模型“{model}”。模型表（{where}）中的模型：{known}。请在模型表中添加该模型，"
            "或在 config.yaml 中设置 allow_unknown_models: true（仅做基本检查）。")


_cache: dict[tuple, ModelTable] = {}
_lock = threading.Lock()


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the model table ({exc}).", f"{path}：无法读取模型表（{exc}）。") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a model table is a mapping.", f"{path}：模型表应为映射。")
    return data


def _validate(data: dict, files: list[str]) -> ModelTable:
    try:
        return ModelTable.model_validate({**data, "files": tuple(files)})
    except PydanticError as exc:
        en, zh = pydantic_message(exc)
        where = " + ".join(files)
        raise ConfigError(f"{where}: {en}", f"{where}：{zh}") from exc


def _stamp(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


def load(engine_id: str, extra: Path | None = None) -> ModelTable:
    """The packaged table of ``engine_id``, with the models of ``extra`` (a YAML file with a
    ``models:`` mapping) added or replacing packaged entries when that file exists."""
    base = TABLE_DIR / f"{engine_id}.yaml"
    key = (str(base), _stamp(base), str(extra), _stamp(extra) if extra else None)
    with _lock:
        if key in _cache:
            return _cache[key]
    data = _read(base)
    files = [f"engines/cloud/models/{base.name}"]
    if extra is not None and extra.is_file():
        more = _read(extra)
        unknown = set(more) - {"models"}
        if unknown or not isinstance(more.get("models"), dict):
            raise ConfigError(f"{extra}: an extra model table holds only 'models:' (a mapping of model ids).",
                              f"{extra}：附加模型表只能包含 models:（模型 ID 映射）。")
        data = {**data, "models": {**data["models"], **more["models"]}}
        files.append(str(extra))
    table = _validate(data, files)
    with _lock:
        _cache[key] = table
    return table


def for_settings(engine_id: str, settings) -> ModelTable:
    workspace = getattr(settings, "workspace", None)
    return load(engine_id, Path(workspace) / WORKSPACE_DIR / f"{engine_id}.yaml" if workspace else None)


def allow_unknown(settings) -> bool:
    return bool(getattr(settings, "allow_unknown_models", False))


def model_choices(engine_id: str) -> list[str]:
    """The packaged model ids (for a form's dropdown and the params schema)."""
    return load(engine_id).ids()
