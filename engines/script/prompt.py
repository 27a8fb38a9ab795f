"""What a script engine tells the LLM: the storyboard writer's brief, one text chunk at a time.

``messages(params, chunk, index, count, scenes, known) -> [system, user]``
``scene_share(params, chunks) -> [scenes per chunk]``   the target spread over the chunks by length
"""

from __future__ import annotations

import json

from profiles.draft import CPS, SCENE_CHARS
from profiles.styles import STYLES

FLAVOUR = {
    "tags": ("comma-separated English tags for Stable Diffusion XL (subject, place, action, light, framing), "
             "e.g. 'young swordsman in white robes, standing on a cliff, moonlight, mist, wide shot'"),
    "natural": ("one or two plain sentences (in the text's language or English) describing what the camera sees: "
                "who, where, what they do, the light, the framing; no inner thoughts, no metaphors"),
}


def scene_share(params, chunks: list[str]) -> list[int | None]:
    total = sum(len(c) for c in chunks) or 1
    wanted = params.scenes or (max(1, round(params.seconds / 6.0)) if params.seconds else None)
    if not wanted:
        return [max(1, round(len(c) / SCENE_CHARS)) for c in chunks]
    return [max(1, round(wanted * len(c) / total)) for c in chunks]


def messages(params, chunk: str, index: int, count: int, scenes: int | None, known: list[dict]) -> list[dict]:
    style = STYLES.get(params.style)
    style_line = (f"The project's visual style is '{style.name_en}' ({style.prompt}); the studio adds these style "
                  "words itself, so describe content that fits the style without repeating them."
                  if style and style.prompt else "No style preset: describe the look plainly.")
    seconds = ""
    if params.seconds:
        share = params.seconds * len(chunk) / max(1, len(params.text))
        seconds = (f" This part should last about {share:.0f} seconds in all: condense the narration to about "
                   f"{share * CPS:.0f} Chinese characters (or {share * 2.5:.0f} English words) across its scenes.")
    system = (
        "You are a storyboard writer for short AI-generated videos. You turn a chapter of a novel or a script into "
        "scenes (shots) and characters, and you answer with one JSON object that follows the given JSON schema, "
        "nothing else.\n"
        "Rules:\n"
        "- characters: everyone who appears or speaks. id: a short ASCII slug (pinyin or English, e.g. 'hanli'); "
        "name: as in the text; description: one line for people; prompt: the character's fixed appearance "
        f"(age, face, hair, clothing) written as {FLAVOUR[params.prompts]}; voice: male, female or narrator.\n"
        f"- scenes: in story order. prompt: {FLAVOUR[params.prompts]}. camera: a shot and its movement "
        "(e.g. 'close-up, slow push in'). motion: what moves. duration: seconds, 2 to 15. narration: what the "
        "narrator says over the shot, in the text's own language, faithful to the text. lines: the dialogue, "
        "each with the speaking character's id and the words said. characters: ids of those on screen.\n"
        "- Keep every event of the text; do not invent plot.\n"
        f"- {style_line}\n"
        "Answer with JSON only. / 只输出 JSON。")
    known_line = ""
    if known:
        listed = json.dumps([{k: c[k] for k in ("id", "name") if k in c} for c in known], ensure_ascii=False)
        known_line = (f"These characters already exist; reuse their ids and do not list them again in "
                      f"'characters': {listed}\n")
    target = f"Write about {scenes} scenes for this part.{seconds}\n" if scenes else seconds + "\n"
    part = f"This is part {index + 1} of {count} of the text.\n" if count > 1 else ""
    user = f"{part}{known_line}{target}Text:\n<<<\n{chunk}\n>>>\nAnswer with the JSON object only."
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
