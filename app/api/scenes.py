"""Seed 000's multi-scene videos and characters — the seam the projects/episodes work replaces.

Today a ``POST /api/v1/videos/generate`` becomes one job per scene (text-to-video on
``engines.seed000_video``) grouped under one task id (``TaskGroup``); the group's status is
derived from its jobs. When episodes exist, ``submit_scenes`` should create the episode's
parent job (stills → clips → stitch) and ``group_view`` report it; the routes stay as they are.

``character_inputs`` finds a character's reference faces in ``projects/*/characters.yaml``
until the profiles package offers a lookup.
"""

from __future__ import annotations

import uuid

import yaml

from app.db import Job
from app.errors import AppError, NotFound

from .models import TaskGroup

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


# --- fitting numbers to an engine's parameter model -----------------------------------------
def field_bounds(engine, name: str) -> dict:
    field = engine.Params.model_fields.get(name)
    out: dict = {}
    for meta in getattr(field, "metadata", ()) if field else ():
        for attr in ("ge", "le", "multiple_of"):
            if getattr(meta, attr, None) is not None:
                out[attr] = getattr(meta, attr)
    return out


def fit(engine, name: str, value: float) -> int:
    """Round ``value`` to what the engine's field accepts (multiple_of, then ge/le)."""
    b = field_bounds(engine, name)
    step = b.get("multiple_of") or 1
    v = int(round(value / step) * step)
    if "ge" in b:
        v = max(v, int(-(-b["ge"] // step) * step))
    if "le" in b:
        v = min(v, int(b["le"] // step * step))
    return v


def keep_known(engine, params: dict) -> dict:
    fields = engine.Params.model_fields
    return {k: v for k, v in params.items() if k in fields and v is not None}


def scene_params(engine, scene, config) -> dict:
    width, height = (int(v) for v in config.resolution.lower().split("x"))
    params: dict = {"width": fit(engine, "width", width), "height": fit(engine, "height", height)}
    fields = engine.Params.model_fields
    if "num_frames" in fields:
        native = fields["fps"].default if "fps" in fields and isinstance(fields["fps"].default, int) else config.fps
        frames = max(1, round(scene.duration * native))
        if engine.id.startswith("wan"):
            frames = 4 * round((frames - 1) / 4) + 1
        params["num_frames"] = fit(engine, "num_frames", frames)
    elif "duration" in fields:
        params["duration"] = max(1, round(scene.duration))
    if scene.seed is not None:
        params["seed"] = scene.seed
    if config.num_inference_steps is not None:
        params["num_inference_steps"] = config.num_inference_steps
    return keep_known(engine, params)


# --- the seam -----------------------------------------------------------------------------
def submit_scenes(c, engine, body) -> TaskGroup:
    """One job per scene, all or none: a refused scene cancels those already queued."""
    jobs: list[Job] = []
    try:
        for scene in body.scenes:
            request = {"engine": engine.id, "prompt": scene.prompt, "negative_prompt": scene.negative_prompt,
                       "params": scene_params(engine, scene, body.video_config)}
            jobs.append(c.service.submit(request, source="rest:000", user=c.principal.user))
    except AppError:
        for job in jobs:
            c.service.cancel(job.id)
        raise
    return TaskGroup.create(id=uuid.uuid4().hex, user=c.principal.user, kind="video",
                            job_ids=[j.id for j in jobs], request=body.model_dump(mode="json"))


def group_jobs(group: TaskGroup) -> list[Job]:
    found = {j.id: j for j in Job.select().where(Job.id.in_(group.job_ids))}
    return [found[i] for i in group.job_ids if i in found]


def group_status(jobs: list[Job]) -> str:
    states = {j.status for j in jobs}
    if not jobs:
        return "failed"
    if "failed" in states:
        return "failed"
    if states == {"succeeded"}:
        return "completed"
    if states <= {"cancelled", "succeeded"}:
        return "cancelled"
    if states == {"queued"}:
        return "queued"
    return "processing"


# --- characters ---------------------------------------------------------------------------
def _entries(data) -> list[dict]:
    if isinstance(data, dict) and isinstance(data.get("characters"), (list, dict)):
        data = data["characters"]
    if isinstance(data, dict):
        return [{"id": k, **v} for k, v in data.items() if isinstance(v, dict)]
    if isinstance(data, list):
        return [e for e in data if isinstance(e, dict)]
    return []


def character_inputs(settings, character_id: str) -> tuple[list[str], str]:
    """(reference image paths, prompt fragment) of a character defined in any project."""
    workspace = settings.workspace.resolve()
    for path in sorted(settings.projects_dir.glob("*/characters.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        for entry in _entries(data):
            if str(entry.get("id")) != character_id:
                continue
            refs = entry.get("reference_images") or entry.get("references") or entry.get("images") or []
            refs = [refs] if isinstance(refs, str) else refs
            files = []
            for ref in refs if isinstance(refs, list) else []:
                for base in (path.parent, path.parent / "assets"):
                    candidate = (base / str(ref)).resolve()
                    if (candidate.is_file() and candidate.is_relative_to(workspace)
                            and candidate.suffix.lower() in IMAGE_SUFFIXES):
                        files.append(str(candidate))
                        break
            if files:
                fragment = str(entry.get("prompt") or entry.get("description") or "")
                return files, fragment
            raise NotFound(f"Character '{character_id}' ({path}) has no reference image that exists. Add "
                           "reference_images to it.", f"角色“{character_id}”（{path}）没有可用的参考图片，请补充 "
                           "reference_images。")
    raise NotFound(f"Unknown character_id '{character_id}'. Define it in a project's characters.yaml with its "
                   "reference_images.", f"未知的 character_id“{character_id}”。请在项目的 characters.yaml 中定义"
                   "该角色及其 reference_images。")
