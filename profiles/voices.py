"""Who says what in a scene, with which voice — the one place that names the default voices.

    speech_lines(project, scene) -> [SpeechLine]   narration first, then the dialogue lines in order

A line's voice is its character's ``voice``, else the project's ``narrator_voice``, else the
default below. The default voice ids are those of the offline engine ``local-tts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ValidationError

from .schema import Voice

DEFAULT_ENGINE = "local-tts"
NARRATOR, MALE, FEMALE = "narrator", "male", "female"  # voice ids every local-tts install has
NARRATOR_SPEAKER = "narrator"  # the speaker of a scene's narration (never a character id: ids are slugs too,
#                                 so a character called "narrator" is told apart by SpeechLine.character)


def default_voice() -> Voice:
    return Voice(engine=DEFAULT_ENGINE, voice=NARRATOR)


@dataclass(frozen=True)
class SpeechLine:
    scene: str
    index: int  # position in the scene: 0 is the narration when there is one
    speaker: str  # a character id, or NARRATOR_SPEAKER
    character: bool  # True for a dialogue line
    text: str
    voice: Voice
    at: float | None = None  # seconds into the scene; None: right after the line before

    def key(self) -> dict:
        """What the speech depends on (hash it to reuse a synthesised line)."""
        return {"text": self.text, **self.voice.model_dump(mode="json")}


def speech_lines(project, scene) -> list[SpeechLine]:
    narrator = project.config.narrator_voice or default_voice()
    out: list[SpeechLine] = []
    if scene.narration.strip():
        out.append(SpeechLine(scene.id, 0, NARRATOR_SPEAKER, False, scene.narration.strip(), narrator))
    for line in scene.lines:
        character = project.characters.get(line.character)
        voice = (character.voice if character is not None else None) or narrator
        out.append(SpeechLine(scene.id, len(out), line.character, True, line.text, voice, line.at))
    return out


def speech_request(project_id: str, line: SpeechLine) -> dict:
    """The ``tts`` job request of one line: the episode's step and the Projects tab's preview button
    send exactly this, so a line previewed once is reused by the render (and the other way round)."""
    voice = line.voice
    return {"engine": voice.engine, "project": project_id, "prompt": line.text,
            "params": {"text": line.text, "voice": voice.voice, "speed": voice.speed, "format": "wav"}}


def voice_source(project, line: SpeechLine) -> str:
    """Where the line's voice is set, as ``<file> <field>`` (for messages that name the fix)."""
    cfg = project.config
    character = project.characters.get(line.speaker) if line.character else None
    if character is not None and character.voice is not None:
        return f"{cfg.character_profiles} characters.{line.speaker}.voice"
    return "project.yaml narrator_voice"


# --- dialogue as text (the Projects tab's box: one "角色: 台词" a line) ------------------------------
_LINE = re.compile(r"^(?P<who>[^:：@]+?)\s*(?:@\s*(?P<at>\d+(?:\.\d+)?)\s*s?\s*)?[:：](?P<text>.*)$")
MAX_LINES = 40  # as scenes.yaml allows
MAX_TEXT = 500


def format_dialogue(lines) -> str:
    """A scene's ``lines`` (dicts or ``Line``) as the editor shows them: ``hanli: 台词`` or ``hanli @2.5: 台词``."""
    out = []
    for line in lines:
        data = line if isinstance(line, dict) else line.model_dump()
        at = data.get("at")
        out.append(f"{data['character']}{f' @{at:g}' if at is not None else ''}: {data['text']}")
    return "\n".join(out)


def parse_dialogue(text: str, characters: dict) -> list[dict]:
    """The editor's dialogue box back to ``lines`` — strictly: every non-empty line is ``<who>: <words>``
    (``：`` too), ``<who>`` a character's id or name, ``@<seconds>`` optional. Errors name the line and the fix."""
    names = {}
    for cid, character in characters.items():
        names[cid.lower()] = cid
        name = getattr(character, "name", "") or ""
        parts = name.split()
        for key in (name, *parts, " ".join(parts[1:]), " ".join(parts[:-1])):  # "韩立 Han Li": 韩立, Han Li…
            if not key.strip():
                continue
            names.setdefault(key.strip().lower(), cid)
    known = ", ".join(characters) or "—"
    out = []
    rows = [(n, raw.strip()) for n, raw in enumerate((text or "").splitlines(), 1) if raw.strip()]
    if len(rows) > MAX_LINES:
        raise ValidationError(f"A scene may have at most {MAX_LINES} dialogue lines (this one has {len(rows)}).",
                              f"每个场景最多 {MAX_LINES} 句台词（这里有 {len(rows)} 句）。")
    for n, raw in rows:
        m = _LINE.match(raw)
        if m is None:
            raise ValidationError(f"Dialogue line {n}: write it as 'character: words' (for example 'hanli: 这是哪里？'), "
                                  "with 'character @2.5: words' to start it 2.5 s into the scene.",
                                  f"台词第 {n} 行：请写成“角色: 台词”（例如“hanli: 这是哪里？”）；"
                                  "写成“角色 @2.5: 台词”可让它在场景第 2.5 秒开始。")
        who, words = m.group("who").strip(), m.group("text").strip()
        cid = names.get(who.lower())
        if cid is None:
            raise ValidationError(f"Dialogue line {n}: no character '{who}' in this project. Known: {known}. Fix: use "
                                  "one of them, or add the character in the Characters tab first.",
                                  f"台词第 {n} 行：项目中没有角色“{who}”。已有：{known}。请使用其中之一，或先在“角色”页添加。")
        if not words:
            raise ValidationError(f"Dialogue line {n}: {who} says nothing. Write the words after the colon.",
                                  f"台词第 {n} 行：{who} 没有台词，请在冒号后写上台词。")
        if len(words) > MAX_TEXT:
            raise ValidationError(f"Dialogue line {n}: at most {MAX_TEXT} characters a line ({len(words)} here). "
                                  "Split it into two lines.",
                                  f"台词第 {n} 行：每句最多 {MAX_TEXT} 个字（这里 {len(words)} 个），请拆成两句。")
        line = {"character": cid, "text": words}
        if m.group("at") is not None:
            at = float(m.group("at"))
            if at > 600:
                raise ValidationError(f"Dialogue line {n}: @{at:g} s is past the longest scene (600 s).",
                                      f"台词第 {n} 行：@{at:g} 秒超出了场景的最长时长（600 秒）。")
            line["at"] = at
        out.append(line)
    return out
