"""Human controls → an engine's raw parameters: aspect ratio and size, seconds, presets.

Pure functions over the engine's ``Params`` model, so the Create form, tests and scripts agree:

    human_params(engine, aspect="16:9", quality="medium", seconds=5, preset="standard")
      → {"width": 832, "height": 480, "num_frames": 81, "num_inference_steps": 50, ...}

Local engines get pixel sizes that keep the engine's default area (its native size at
"medium"), snapped to the field's ``multiple_of`` and bounds, and frames from seconds at the
engine's fps (Wan: the nearest 4k+1). Cloud engines get their own fields: ``ratio`` /
``aspect_ratio``, ``resolution`` tiers, ``size`` strings and ``duration`` in seconds.
"""

from __future__ import annotations

import math
import typing

from .forms import _bounds, _unwrap_optional

ASPECTS = ("16:9", "9:16", "1:1")
EXTRA_ASPECTS = ("4:3", "3:4", "21:9")
QUALITIES = ("low", "medium", "high")
PRESETS = ("draft", "standard", "fine")
SCALE = {"low": 0.75, "medium": 1.0, "high": 1.25}
TIER = {"low": "480", "medium": "720", "high": "1080"}
CONTROLLED = {"width", "height", "num_frames", "num_inference_steps", "guidance_scale", "min_guidance_scale",
              "max_guidance_scale", "duration", "resolution", "size", "ratio", "aspect_ratio"}
MEMORY = {"offload", "vae_tiling", "attention", "decode_chunk_size", "fps"}  # fps: the duration reads it
# engine id: preset -> (steps, guidance); the "standard" row is the engine's own default
PRESET_TABLE: dict[str, dict[str, tuple[int, float]]] = {
    "wan2.1-t2v-1.3b": {"draft": (20, 5.0), "standard": (50, 5.0), "fine": (80, 6.0)},
    "wan2.1-i2v-480p": {"draft": (20, 5.0), "standard": (40, 5.0), "fine": (60, 5.5)},
    "wan2.1-i2v-720p": {"draft": (20, 5.0), "standard": (40, 5.0), "fine": (60, 5.5)},
    "sdxl": {"draft": (15, 5.0), "standard": (30, 5.0), "fine": (50, 7.0)},
    "sdxl-instantid": {"draft": (15, 5.0), "standard": (30, 5.0), "fine": (50, 7.0)},
    "svd-xt": {"draft": (12, 2.5), "standard": (25, 3.0), "fine": (40, 3.5)},
}


def ratio_of(aspect: str) -> float:
    w, h = (float(x) for x in aspect.split(":"))
    return w / h


def _default(field):
    return None if field.is_required() else field.get_default(call_default_factory=True)


def _snap(value: float, field) -> int:
    lo, hi, step = _bounds(field)
    step = int(step or 1)
    v = int(round(value / step)) * step
    if hi is not None:
        v = min(v, int(hi) // step * step)
    if lo is not None:
        v = max(v, int(math.ceil(lo / step)) * step)
    return v


def _literal(field) -> tuple:
    ann = _unwrap_optional(field.annotation)
    return typing.get_args(ann) if typing.get_origin(ann) is typing.Literal else ()


def aspects_for(engine) -> list[str]:
    """The aspect ratios this engine can be asked for (the three common ones first)."""
    f = engine.Params.model_fields
    if "width" in f and "height" in f:
        return [*ASPECTS, *EXTRA_ASPECTS]
    if "size" in f and "resolution" not in f:  # a 'WxH' size (Zhipu)
        return list(ASPECTS)
    for name in ("aspect_ratio", "ratio"):
        if name in f:
            allowed = _literal(f[name])
            extra = EXTRA_ASPECTS if name == "ratio" else ()
            return [a for a in (*ASPECTS, *extra) if not allowed or a in allowed]
    return []


def has_controls(engine) -> dict[str, bool]:
    f = engine.Params.model_fields
    video = bool({"t2v", "i2v", "kf2v", "ref2v"} & set(engine.tasks))
    return {"aspect": bool(aspects_for(engine)), "quality": bool({"width", "resolution", "size"} & set(f)),
            "duration": video and bool({"num_frames", "duration"} & set(f)),
            "preset": engine.id in PRESET_TABLE or "num_inference_steps" in f}


def size_for(engine, aspect: str, quality: str = "medium") -> tuple[int, int]:
    """Pixel size for a local engine: the default area at "medium", the requested shape."""
    f = engine.Params.model_fields
    dw, dh = _default(f["width"]), _default(f["height"])
    scale = SCALE.get(quality, 1.0)
    a = ratio_of(aspect)
    if abs(a - dw / dh) < 0.08:  # the engine's native shape: keep its exact size
        w, h = dw * scale, dh * scale
    elif abs(a - dh / dw) < 0.08:
        w, h = dh * scale, dw * scale
    else:
        area = dw * dh * scale * scale
        h = math.sqrt(area / a)
        w = h * a
    return _snap(w, f["width"]), _snap(h, f["height"])


def frames_for(engine, seconds: float, fps: int | None = None) -> int:
    """Frames for ``seconds`` at the engine's fps; Wan's models need 4k+1 frames."""
    f = engine.Params.model_fields["num_frames"]
    fps = fps or _default(engine.Params.model_fields.get("fps")) if "fps" in engine.Params.model_fields else fps
    n = max(1, round(seconds * (fps or 16)))
    if engine.id.startswith("wan"):
        n = 4 * round((n - 1) / 4) + 1
        _, hi, _ = _bounds(f)
        while hi is not None and n > hi:
            n -= 4
        return max(n, 1)
    return _snap(n, f)


def preset_for(engine, preset: str) -> dict:
    f = engine.Params.model_fields
    row = PRESET_TABLE.get(engine.id)
    if row is None:
        if "num_inference_steps" not in f:
            return {}
        std = _default(f["num_inference_steps"])
        steps = {"draft": max(4, round(std * 0.4)), "standard": std, "fine": round(std * 1.6)}[preset]
        return {"num_inference_steps": _snap(steps, f["num_inference_steps"])}
    steps, guidance = row[preset]
    out = {"num_inference_steps": _snap(steps, f["num_inference_steps"])}
    if "guidance_scale" in f:
        out["guidance_scale"] = guidance
    elif "max_guidance_scale" in f:
        out["max_guidance_scale"] = guidance
    return out


def _cloud_size(field_name: str, aspect: str, quality: str) -> str:
    short = int(TIER[quality])
    long = {"480": 832, "720": 1280, "1080": 1920}[TIER[quality]]
    w, h = {"16:9": (long, short), "9:16": (short, long)}.get(aspect, (short, short))
    if aspect == "1:1":
        w = h = {"480": 624, "720": 960, "1080": 1440}[TIER[quality]]
    return f"{w}*{h}" if field_name == "dashscope" else f"{w}x{h}"


def human_params(engine, aspect: str | None = None, quality: str | None = None, seconds: float | None = None,
                 preset: str | None = None, fps: int | None = None) -> dict:
    """The raw parameters the human controls stand for (only those this engine has)."""
    f = engine.Params.model_fields
    out: dict = {}
    quality = quality or "medium"
    if aspect and "width" in f and "height" in f:
        out["width"], out["height"] = size_for(engine, aspect, quality)
    elif aspect and "size" in f and "resolution" not in f:
        out["size"] = _cloud_size(engine.id, aspect, quality)
    elif aspect:
        for name in ("ratio", "aspect_ratio"):
            if name in f:
                out[name] = aspect
    if "resolution" in f and "width" not in f and quality:
        allowed = _literal(f["resolution"])
        tier = TIER[quality]
        suffix = "p" if engine.id == "ark" else "P"
        value = f"{tier}{suffix}"
        if not allowed or value in allowed:
            out["resolution"] = value
    if seconds:
        if "num_frames" in f:
            out["num_frames"] = frames_for(engine, seconds, fps)
        elif "duration" in f:
            lo, hi, _ = _bounds(f["duration"])
            out["duration"] = int(min(max(round(seconds), max(lo or 1, 1)), hi or 60))
    if preset and preset in PRESETS:
        out.update(preset_for(engine, preset))
    return out
