"""Who says what in a scene, with which voice — the one place that names the default voices.

    speech_lines(project, scene) -> [SpeechLine]   narration first, then the dialogue lines in order

A line's voice is its character's ``voice``, else the project's ``narrator_voice``, else the
default below. The default voice ids are those of the offline engine ``local-tts``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
