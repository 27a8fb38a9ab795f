"""Style presets and prompt composition (a pure function: same inputs, same prompt).

    prompt   = style words + character fragments + scene prompt + camera + motion
    negative = project negative prompt + style negative + scene negative

Parts are joined with ", "; empty parts and repeated parts are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StylePreset:
    id: str
    name_en: str
    name_zh: str
    prompt: str
    negative: str


STYLES: dict[str, StylePreset] = {s.id: s for s in (
    StylePreset("xianxia", "Xianxia", "仙侠",
                "xianxia fantasy, immortal cultivation world, flowing hanfu robes, misty mountains, "
                "glowing spiritual energy, cinematic lighting",
                "modern clothing, cars, city buildings"),
    StylePreset("wuxia", "Wuxia", "武侠",
                "wuxia martial arts film, ancient China, bamboo forest, dynamic sword fighting, film grain",
                "magic glow, modern clothing, firearms"),
    StylePreset("ink-wash", "Ink wash", "水墨",
                "traditional Chinese ink wash painting, shuimo, monochrome ink, rice paper texture, "
                "elegant brush strokes, negative space",
                "photorealistic, saturated colours, 3d render"),
    StylePreset("anime", "Anime", "动漫",
                "anime style, cel shading, clean line art, vibrant colours, detailed background",
                "photorealistic, 3d render, blurry lines"),
    StylePreset("cinematic", "Cinematic", "电影感",
                "cinematic film still, shallow depth of field, dramatic lighting, 35mm, high detail",
                "cartoon, flat lighting, oversaturated"),
    StylePreset("none", "No style", "无风格", "", ""),
)}

BASE_NEGATIVE = "blurry, low quality, deformed face, extra fingers, watermark, text"


def join_parts(*parts: str) -> str:
    out: list[str] = []
    for part in parts:
        part = (part or "").strip().strip(",").strip()
        if part and part not in out:
            out.append(part)
    return ", ".join(out)


def compose_prompt(style: str, scene_prompt: str, fragments: list[str] = (), camera: str = "",
                   motion: str = "") -> str:
    preset = STYLES.get(style, STYLES["none"])
    return join_parts(preset.prompt, *fragments, scene_prompt, camera, motion)


def compose_negative(style: str, project_negative: str = "", scene_negative: str = "") -> str:
    preset = STYLES.get(style, STYLES["none"])
    return join_parts(project_negative, preset.negative, scene_negative)


def compose(project, characters: dict, scene) -> tuple[str, str]:
    """(prompt, negative prompt) of ``scene`` in ``project`` (a ProjectConfig) with ``characters``."""
    fragments = [characters[c].prompt for c in scene.characters if c in characters]
    prompt = compose_prompt(project.style, scene.prompt, fragments, scene.camera, scene.motion)
    negative = compose_negative(project.style, project.negative_prompt, scene.negative_prompt)
    return prompt, negative
