"""Turning a pydantic error on a project file into one ProfileError naming file, field and fix."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from core.errors import ProfileError

MAX_LISTED = 3
SLUG_HINT_EN = "use letters, digits, '-' or '_' only (no '/', '..' or spaces), at most 64 characters"
SLUG_HINT_ZH = "只能使用字母、数字、“-”或“_”（不能有“/”“..”或空格），最多 64 个字符"


def field_path(loc: tuple) -> str:
    """``("scenes", 2, "duration")`` → ``scenes[2].duration``; a bad mapping key → ``characters[id '../x']``."""
    out = ""
    parts = list(loc)
    for i, part in enumerate(parts):
        if part == "[key]":
            continue
        if i + 1 < len(parts) and parts[i + 1] == "[key]":
            out += f"[id '{part}']"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _inner(annotation):
    """The model class a field's annotation leads to, through Optional/list/dict."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _inner(arg)
    if origin in (list, tuple):
        return _inner(typing.get_args(annotation)[0])
    if origin is dict:
        return _inner(typing.get_args(annotation)[1])
    if origin is typing.Annotated:
        return _inner(typing.get_args(annotation)[0])
    return annotation


def allowed_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at ``loc`` (the unknown key's own position is loc[-1])."""
    current = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str) \
                and part in current.model_fields:
            current = _inner(current.model_fields[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _fix(err: dict, model) -> tuple[str, str]:
    kind = err.get("type", "")
    loc = tuple(err.get("loc", ()))
    last = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        allowed = ", ".join(allowed_fields(model, loc))
        return (f"unknown field. Fix: remove '{last}' or correct its spelling (allowed here: {allowed})",
                f"未知字段。请删除“{last}”或修正拼写（此处可用：{allowed}）")
    if kind == "missing":
        return f"required. Fix: add '{last}'", f"必填。请添加“{last}”"
    if kind == "string_pattern_mismatch":
        return f"not a valid id. Fix: {SLUG_HINT_EN}", f"不是有效的 ID。{SLUG_HINT_ZH}"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{msg}. Fix: use a value in range", f"{msg}。请使用范围内的数值"
    return f"{msg}. Fix: correct this value", f"{msg}。请修正该值"


def profile_error(exc: PydanticError, file: str, model) -> ProfileError:
    errors = exc.errors()
    parts_en, parts_zh = [], []
    for err in errors[:MAX_LISTED]:
        where = field_path(tuple(err.get("loc", ())))
        en, zh = _fix(err, model)
        parts_en.append(f"{where}: {en}")
        parts_zh.append(f"{where}：{zh}")
    more = len(errors) - MAX_LISTED
    tail_en = f" (and {more} more)" if more > 0 else ""
    tail_zh = f"（另有 {more} 处）" if more > 0 else ""
    first = field_path(tuple(errors[0].get("loc", ()))) if errors else None
    return ProfileError(f"{file} → " + "; ".join(parts_en) + tail_en,
                        f"{file} → " + "；".join(parts_zh) + tail_zh, file=file, field=first)


def validate(model: type[BaseModel], data, file: str):
    """``model.model_validate(data)`` with errors as ProfileError; an empty file is an empty mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{file}: expected a mapping of fields at the top level, got {type(data).__name__}. "
                           "Fix: see the sample project for the file's shape.",
                           f"{file}：顶层应为字段映射。请参照示例项目的格式。", file=file, field=None)
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        raise profile_error(exc, file, model) from None
