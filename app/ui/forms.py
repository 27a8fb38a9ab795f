"""Build Gradio inputs from an engine's pydantic ``Params`` model, and read them back.

Bounded numbers become sliders, ``Literal`` choices dropdowns, booleans checkboxes; a ``seed``
field becomes a number where -1 (or empty) means "random". An optional field whose default is
None ("decide for me": ``vae_tiling``, a provider's ``resolution`` or ``duration``) starts unset
(auto/on/off, an "auto" choice, an empty number box), so an untouched form keeps the engine's
own choice. Everything else is a textbox whose text is parsed as JSON when it looks like JSON.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import gradio as gr
from annotated_types import Ge, Le, MultipleOf

from .param_texts import choice_key, help_key, label_key

HIDDEN_FIELDS = {"seed"}
TRISTATE = {"auto": None, "on": True, "off": False}


def _bounds(field) -> tuple[float | None, float | None, float | None]:
    lo = hi = step = None
    for meta in field.metadata:
        if isinstance(meta, Ge):
            lo = meta.ge
        elif isinstance(meta, Le):
            hi = meta.le
        elif isinstance(meta, MultipleOf):
            step = meta.multiple_of
    return lo, hi, step


def _unwrap_optional(annotation):
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return non_none[0]
    return annotation


def _texts(name: str, field, t, model):
    """(label, info, choice-label function): I18n keys when ``t`` is given, else the raw name."""
    if t is None:
        return name, field.description or None, lambda value: str(value)

    def choice(value):
        key = choice_key(name, value)
        return t(key) if key else str(value)

    info = t(help_key(model, name)) if model is not None and field.description else None
    return t(label_key(name)), info, choice


def component_for(name: str, field, t=None, model=None) -> gr.components.Component:
    """The input for one field; with ``t`` (gr.I18n) and ``model`` its label, help and word choices
    follow the page's language (see ``param_texts``)."""
    label, info, choice = _texts(name, field, t, model)
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    ann = _unwrap_optional(field.annotation)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if extra.get("choices"):  # a model table's ids: pick one, or type a newer id
        choices = list(extra["choices"])
        return gr.Dropdown(choices=choices, value=default if default is not None else choices[0], label=label,
                           info=info, allow_custom_value=True, interactive=True)
    if typing.get_origin(ann) is typing.Literal:
        choices = list(typing.get_args(ann))
        if default is None and not field.is_required():  # the provider decides unless a choice is made
            auto = t("choice_auto") if t is not None else "auto"
            return gr.Dropdown(choices=[(auto, ""), *((choice(c), c) for c in choices)], value="", label=label,
                               info=info, interactive=True)
        return gr.Dropdown(choices=[(choice(c), c) for c in choices], value=default if default in choices else choices[0],
                           label=label, info=info, interactive=True)
    if ann is bool and default is None:
        names = [(t(f"choice_{k}") if t is not None else k, k) for k in TRISTATE]
        return gr.Dropdown(choices=names, value="auto", label=label, info=info, interactive=True)
    if ann is bool:
        return gr.Checkbox(value=bool(default), label=label, info=info, interactive=True)
    if ann in (int, float):
        lo, hi, step = _bounds(field)
        if default is None:  # optional with no default ("the provider's default"): empty until set
            # no bounds on the component: an empty box arrives as 0, and the model checks the range
            return gr.Number(value=None, step=step, label=label, info=info,
                             precision=0 if ann is int else None, interactive=True)
        if lo is not None and hi is not None and hi - lo <= 4096:
            step = step or (1 if ann is int else 0.1)
            return gr.Slider(minimum=lo, maximum=hi, step=step, value=default, label=label, info=info,
                             interactive=True)
        return gr.Number(value=default, label=label, info=info, precision=0 if ann is int else None, interactive=True)
    text = "" if default is None else (default if isinstance(default, str) else json.dumps(default, ensure_ascii=False))
    return gr.Textbox(value=text, label=label, info=info, interactive=True)


def lora_picker(field, available: list[str], folder, t=None) -> gr.components.Component:
    """``loras``: pick files from ``models/loras``; ``name:0.7`` sets a weight (1.0 when left out)."""
    info = t("lora_help") if t is not None else \
        f"LoRA files in {folder}; type name:0.7 for a weight other than 1.0"
    return gr.Dropdown(choices=available, value=[], multiselect=True, allow_custom_value=True,
                       label=t("p_loras") if t is not None else "loras", info=info, interactive=True)


def parse_loras(values: list) -> list:
    """``["name", "name:0.7"]`` → ``[{"name", "weight"}]``; anything else is left for validation to explain."""
    out = []
    for item in values:
        if not isinstance(item, str):
            out.append(item)
            continue
        name, sep, weight = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        try:
            out.append({"name": name.strip(), "weight": float(weight)} if sep else {"name": name})
        except ValueError:
            out.append({"name": item.strip(), "weight": weight})  # the model says the weight is not a number
    return out


def read_value(field, value: Any) -> Any:
    ann = _unwrap_optional(field.annotation)
    if value in (None, ""):
        return None if not field.is_required() else value
    if ann is bool and isinstance(value, str) and value in TRISTATE:
        return TRISTATE[value]
    if ann is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and ann is not str and value.strip()[:1] in "[{0123456789-tfn":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def params_from(model, names: list[str], values: list[Any]) -> dict:
    """The params dict for a request: fields left at their default are left out."""
    out = {}
    for name, value in zip(names, values):
        field = model.model_fields[name]
        parsed = parse_loras(value) if name == "loras" and isinstance(value, list) else read_value(field, value)
        if parsed is None and not field.is_required():
            continue
        out[name] = parsed
    return out
