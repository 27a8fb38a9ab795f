"""A drafted project: what a script engine (an LLM, or the offline splitter) hands back.

The fields are taken from the project's own models (``profiles.schema``: ``Scene``, ``Character``,
``Line``), with their limits, so a draft that validates here also fits ``scenes.yaml`` and
``characters.yaml``. Only what a writer decides is here; engines, seeds and faces are the studio's.

    DraftProject      {title, characters: [DraftCharacter], scenes: [DraftScene]}
    DraftCharacter    {id, name, description, prompt (appearance), voice: male | female | narrator}
    DraftScene        {title, prompt, camera, motion, duration, narration, characters, lines}
    DraftLine         {character, text}

``DraftProject.model_validate(data, context={"known": {ids}})``: characters named by scenes and lines
must be drafted too, or be among ``known`` (those the target project already has).

``reply_schema()``   the JSON schema sent to the LLM (structured output): refs inlined, every property
                     required, no extra properties, no defaults (what OpenAI-style strict mode accepts).
"""

from __future__ import annotations

import copy
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    model_validator,
)

from .schema import Character, Line, Scene, Slug

MAX_SCENES = 200  # ScenesFile's limit
MAX_CHARACTERS = 40


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _fields(model: type[BaseModel], *names: str) -> dict:
    """``names`` of ``model`` as ``create_model`` wants them: (annotation, FieldInfo) with the limits."""
    return {name: (model.model_fields[name].annotation, copy.deepcopy(model.model_fields[name]))
            for name in names}


DraftLine = create_model("DraftLine", __base__=_Strict, __doc__="One line of dialogue.",
                         **_fields(Line, "character", "text"))

_DraftSceneBase = create_model(
    "_DraftSceneBase", __base__=_Strict,
    **_fields(Scene, "title", "prompt", "camera", "motion", "duration", "narration", "characters"))


class DraftScene(_DraftSceneBase):
    """One shot: what is seen (prompt, camera, motion), heard (narration, lines), and for how long."""

    lines: list[DraftLine] = Field(default_factory=list, max_length=40,  # type: ignore[valid-type]
                                   description="Dialogue, in order, after the narration")


_DraftCharacterBase = create_model("_DraftCharacterBase", __base__=_Strict,
                                   **_fields(Character, "name", "description", "prompt"))


class DraftCharacter(_DraftCharacterBase):
    """A character: its id (letters, digits, '-', '_'), and what it looks and sounds like."""

    id: Slug
    voice: Literal["male", "female", "narrator"] = Field("narrator", description="Suggested voice")


class DraftProject(_Strict):
    title: str = Field("", max_length=200)
    characters: list[DraftCharacter] = Field(default_factory=list, max_length=MAX_CHARACTERS)
    scenes: list[DraftScene] = Field(..., min_length=1, max_length=MAX_SCENES)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo):
        ids = [c.id for c in self.characters]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"character id(s) {', '.join(twice)} are used twice; give each character its own id")
        known = set(ids) | set((info.context or {}).get("known") or ())
        for n, scene in enumerate(self.scenes):
            named = list(scene.characters) + [line.character for line in scene.lines]
            unknown = sorted({c for c in named if c not in known})
            if unknown:
                raise ValueError(f"scenes[{n}] names character(s) {', '.join(unknown)} that are not in "
                                 "'characters'; add them there or use a listed id")
        return self


# --- the schema the LLM is asked to follow ------------------------------------------------------
_DROP = ("title", "default", "examples")


def _inline(node, defs: dict, names: bool = False):
    """Resolve refs; drop titles and defaults (but not properties that are called so)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        out = {k: _inline(v, defs, names=(k == "properties" and not names))
               for k, v in node.items() if names or (k not in _DROP and k != "$defs")}
        if not names and out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out["properties"])
        return out
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def reply_schema() -> dict:
    """DraftProject's JSON schema in the strict subset vendors accept (pattern kept for ids)."""
    raw = DraftProject.model_json_schema()
    return _inline(raw, raw.get("$defs", {}))
