"""Choosing the engine for each step of a plan and fitting the scene's numbers (frames, fps, sizes)
to what that engine's ``Params`` accept."""

from __future__ import annotations

import math

from pydantic import ValidationError as PydanticError

from core.errors import NotAvailable, ProfileError, ValidationError

from .project import PROJECT_FILE, Project

TASK_DEFAULTS = {("dashscope", "i2v"): {"model": "wanx2.1-i2v-turbo"}}  # the engine default is t2v-only


# --- fitting numbers to an engine's Params -------------------------------------------------
def _bounds(engine, name: str) -> dict:
    f = engine.Params.model_fields.get(name)
    out: dict = {}
    for meta in getattr(f, "metadata", ()) if f else ():
        for attr in ("ge", "gt", "le", "lt", "multiple_of"):
            if getattr(meta, attr, None) is not None:
                out[attr] = getattr(meta, attr)
    return out


def fit_int(engine, name: str, value: float) -> int:
    b = _bounds(engine, name)
    step = int(b.get("multiple_of") or 1)
    v = int(round(value / step) * step)
    lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
    if lo is not None:
        v = max(v, int(math.ceil(lo / step) * step))
    if hi is not None:
        v = min(v, int(hi // step * step))
    return v


def _accepts(engine, name: str, value) -> bool:
    try:
        engine.Params.model_validate({name: value})
    except PydanticError as exc:
        return not any(e.get("loc", ("",))[0] == name for e in exc.errors())
    return True


def fit_frames(engine, wanted: int) -> int:
    """The frame count nearest ``wanted`` (preferring more) that the engine accepts (Wan: 4k+1)."""
    base = fit_int(engine, "num_frames", wanted)
    for delta in (0, 1, 2, 3, 4, -1, -2, -3, -4, 5, 6, 7, 8):
        if base + delta >= 1 and _accepts(engine, "num_frames", base + delta):
            return base + delta
    return base


def engine_fps(engine, params: dict, project_fps: int) -> int:
    if isinstance(params.get("fps"), int):
        return params["fps"]
    f = engine.Params.model_fields.get("fps")
    return f.default if f is not None and isinstance(f.default, int) else project_fps


def video_params(engine, task: str, project: Project, scene, seed: int) -> tuple[dict, set[str]]:
    """(params, names we computed) for a clip; the user's engine_params and scene params win."""
    cfg = project.config
    user = {**TASK_DEFAULTS.get((engine.id, task), {}), **cfg.engine_params.get(engine.id, {}),
            **cfg.engine_params.get(f"{engine.id}:{task}", {}), **scene.params}
    fields = engine.Params.model_fields
    computed: dict = {}
    width, height = cfg.size
    if "width" in fields and "height" in fields:
        computed["width"], computed["height"] = fit_int(engine, "width", width), fit_int(engine, "height", height)
    if "num_frames" in fields:
        computed["num_frames"] = fit_frames(engine, math.ceil(scene.duration * engine_fps(engine, user, cfg.fps)))
    elif "duration" in fields:
        computed["duration"] = fit_int(engine, "duration", math.ceil(scene.duration))
    if "seed" in fields:
        computed["seed"] = seed
    return {**computed, **user}, set(computed) - set(user)


def still_params(engine, project: Project, character, seed: int) -> dict:
    cfg = project.config
    fields = engine.Params.model_fields
    params: dict = {}
    width, height = cfg.size
    if "width" in fields and "height" in fields:
        params["width"], params["height"] = fit_int(engine, "width", width), fit_int(engine, "height", height)
    for name in ("identity_strength", "ip_adapter_scale"):
        if name in fields and character is not None:
            params[name] = character.instantid_strength
    if "num_images" in fields:
        params["num_images"] = 1
    if "seed" in fields:
        params["seed"] = seed
    return {**params, **cfg.engine_params.get(engine.id, {})}


# --- choosing engines ----------------------------------------------------------------------
def _video(engine) -> bool:
    return bool({"t2v", "i2v"} & set(engine.tasks))


def lookup(engines: dict, engine_id: str, where: str):
    engine = engines.get(engine_id)
    if engine is None:
        known = ", ".join(sorted(engines))
        file, _, fld = where.partition(" ")
        raise ProfileError(f"{file} → {fld}: unknown engine '{engine_id}'. Fix: use one of: {known}.",
                           f"{file} → {fld}：未知引擎“{engine_id}”。可用：{known}。", file=file, field=fld)
    return engine


def usable(engine, where: str, what: str, what_zh: str | None = None) -> None:
    ok, reason = engine.available()
    if not ok:
        raise NotAvailable(
            f"{what} needs the engine {engine.id}, which is not available: {reason} Fix: make it available "
            f"(Settings shows what it needs) or choose another engine in {where}.",
            f"{what_zh or what.replace('Scene', '场景')} 需要引擎 {engine.id}，但它不可用：{getattr(reason, 'zh', reason)} 请先使其可用（见“设置”），或在 {where} 中换一个引擎。")


def choose_clip_engine(project: Project, engines: dict, index: int, scene, task: str):
    """(engine, where it was chosen, task) for the scene's clip; may turn i2v into t2v."""
    cfg = project.config
    scenes_file = cfg.scene_profiles
    if scene.engine:
        where = f"{scenes_file} scenes[{index}].engine"
        engine = lookup(engines, scene.engine, where)
        if task in engine.tasks:
            return engine, where, task
        if task == "i2v" and "t2v" in engine.tasks:
            return engine, where, "t2v"  # the user picked a text-to-video engine for this scene
        raise ValidationError(
            f"Scene '{scene.id}': {engine.id} cannot make this clip ({task}; it does {', '.join(engine.tasks)}). "
            f"Fix: give the scene a keyframe or a character with a reference face, or choose an engine that does "
            f"{task} in {where}.",
            f"场景“{scene.id}”：{engine.id} 无法生成此片段（需要 {task}，它支持 {', '.join(engine.tasks)}）。"
            f"请为场景添加关键帧或带参考人脸的角色，或在 {where} 中换用支持 {task} 的引擎。")
    if cfg.default_engine:
        where = f"{PROJECT_FILE} default_engine"
        engine = lookup(engines, cfg.default_engine, where)
        if task in engine.tasks:
            return engine, where, task
    field_name = "i2v_engine" if task == "i2v" else "t2v_engine"
    where = f"{PROJECT_FILE} {field_name}"
    engine = lookup(engines, getattr(cfg, field_name), where)
    if task not in engine.tasks:
        raise ProfileError(f"{PROJECT_FILE} → {field_name}: {engine.id} does not do {task}. Fix: choose an engine "
                           f"that does.", f"{PROJECT_FILE} → {field_name}：{engine.id} 不支持 {task}。请换一个引擎。",
                           file=PROJECT_FILE, field=field_name)
    return engine, where, task


def choose_still_engine(project: Project, engines: dict):
    cfg = project.config
    if cfg.default_engine and cfg.default_engine in engines and not _video(engines[cfg.default_engine]):
        return engines[cfg.default_engine], f"{PROJECT_FILE} default_engine"
    where = f"{PROJECT_FILE} still_engine"
    return lookup(engines, cfg.still_engine, where), where
