"""Seed 000: the "AI video platform" API (images, multi-scene videos, tasks, health, metrics).

    POST /api/v1/images/generate  {prompt, width, height, character_id?, num_inference_steps}
                                  → {task_id, status: "queued", estimated_time, created_at}
    POST /api/v1/videos/generate  {scenes: [{id, prompt, duration}], video_config: {fps, resolution, upscale}}
                                  → the same shape; the task is an episode (app.episodes): a clip job
                                    per scene, then one stitched MP4 under projects/api-<id>/renders/
    GET  /api/v1/tasks/{task_id}  → {task_id, status, progress, result{output_path, thumbnail}, error,
                                     created_at, updated_at}; a video adds ``scenes`` (per-scene clip jobs)
    GET  /api/v1/tasks            → {tasks: [...]} the caller's own (admins: everyone's)
    POST /api/v1/tasks/{task_id}/cancel
    GET  /api/v1/health, GET /metrics
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from peewee import fn
from pydantic import BaseModel, ConfigDict, Field

from app.access import handler
from app.db import Job, connection
from app.episode_steps import EPISODE
from app.episodes import EpisodeService, render_video_request

from . import metrics, scenes
from .common import (
    Ctx,
    ctx,
    engine_for,
    estimated_seconds,
    iso_naive,
    media_url,
    seed_route,
    visible_job,
)

STATUS = {"queued": "queued", "running": "processing", "succeeded": "completed", "failed": "failed",
          "cancelled": "cancelled"}
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def render(request, status: int, detail, kind: str):
    if kind == "validation":
        return JSONResponse({"detail": jsonable_encoder(detail)}, 422)
    return JSONResponse({"detail": detail}, status)


class ImageBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "prompt": "xianxia fantasy, Han Li, calm cultivator, medium shot", "width": 1536, "height": 864,
        "character_id": "hanli", "num_inference_steps": 40}]})

    prompt: str = Field(..., min_length=1, max_length=2000)
    width: int = Field(1024, ge=64, le=4096)
    height: int = Field(1024, ge=64, le=4096)
    character_id: str | None = Field(None, pattern=NAME, description="A character of a project: uses InstantID")
    num_inference_steps: int = Field(30, ge=1, le=200)
    negative_prompt: str = Field("", max_length=2000)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class Scene(BaseModel):
    id: int | str = Field(..., description="The scene's id in your script")
    prompt: str = Field(..., min_length=1, max_length=2000)
    duration: float = Field(5.0, gt=0, le=60, description="Seconds")
    negative_prompt: str = Field("", max_length=2000)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class VideoConfig(BaseModel):
    fps: int = Field(24, ge=1, le=60)
    resolution: str = Field("1280x768", pattern=r"^\d{2,4}x\d{2,4}$", description="Width x height")
    upscale: bool = False
    num_inference_steps: int | None = Field(None, ge=1, le=200, description="Studio extension: denoising steps "
                                            "per scene (default: the engine's)")


class VideoBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "scenes": [{"id": 0, "prompt": "xianxia fantasy, immortal realm sky, golden scroll", "duration": 5.0},
                   {"id": 1, "prompt": "Han Li lying on sand, calm expression", "duration": 4.0}],
        "video_config": {"fps": 24, "resolution": "1280x768", "upscale": True}}]})

    scenes: list[Scene] = Field(..., min_length=1, max_length=50)
    video_config: VideoConfig = Field(default_factory=VideoConfig)


class Accepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "task_id": "550e8400e29b41d4a716446655440000", "status": "queued", "estimated_time": 30,
        "created_at": "2024-01-01T12:00:00"}]})
    task_id: str
    status: str
    estimated_time: int
    created_at: str


class TaskView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "task_id": "550e8400e29b41d4a716446655440000", "status": "completed", "progress": 100,
        "result": {"output_path": "http://localhost:7860/videos/550e8400e29b41d4a716446655440000.png",
                   "thumbnail": "http://localhost:7860/videos/550e8400e29b41d4a716446655440000_thumb.jpg"},
        "error": None, "created_at": "2024-01-01T12:00:00", "updated_at": "2024-01-01T12:00:30"}]})
    task_id: str
    status: str
    progress: float
    result: dict | None = None
    error: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


def job_view(c: Ctx, job: Job) -> dict:
    result = None
    if job.status == "succeeded":
        result = {"output_path": media_url(c, job), "thumbnail": media_url(c, job, thumb=True)}
        if job.info.get("cleaned"):
            result = {"output_path": None, "thumbnail": None, "note": job.info["cleaned"]}
    error = (job.error_zh if c.lang == "zh" and job.error_zh else job.error) if job.status == "failed" else None
    return {"task_id": job.id, "status": STATUS[job.status], "progress": round(job.progress, 1), "result": result,
            "error": error, "created_at": iso_naive(job.created_at), "updated_at": iso_naive(job.updated_at)}


def episode_view(c: Ctx, job: Job) -> dict:
    """The seed 000 task shape of an episode; ``scenes`` lists each scene's clip job (studio extension)."""
    out = job_view(c, job)
    status = EpisodeService(c.service).episode_status(job.id, c.principal)
    parts = []
    for scene in status["scenes"]:
        step = next((s for s in scene["steps"] if s["step"] == "clip"), scene["steps"][-1] if scene["steps"] else {})
        child = Job.get_or_none(Job.id == step["task_id"]) if step.get("task_id") else None
        view = job_view(c, child) if child is not None else None
        parts.append({"id": scene["scene"], "task_id": step.get("task_id"),
                      "status": view["status"] if view else "queued", "progress": view["progress"] if view else 0.0,
                      "output_path": (view["result"] or {}).get("output_path") if view else None,
                      "thumbnail": (view["result"] or {}).get("thumbnail") if view else None})
    out["scenes"] = parts
    return out


def task_view(c: Ctx, job: Job) -> dict:
    return episode_view(c, job) if job.kind == EPISODE else job_view(c, job)


def accepted(c: Ctx, task_id: str, engine, created: float) -> dict:
    workers = c.studio.settings.gpu_pool.max_concurrent if engine.lane == "gpu" else c.studio.settings.queue.io_workers
    default = 30.0 if set(engine.tasks) <= {"t2i"} else 120.0
    return {"task_id": task_id, "status": "queued", "estimated_time": estimated_seconds(engine.id, engine.lane,
                                                                                         workers, default),
            "created_at": iso_naive(created)}


def build(studio) -> APIRouter:
    router = APIRouter(tags=["seed 000 · AI video platform"], route_class=seed_route(render))
    registry = metrics.build_registry(studio)
    started = time.time()

    @router.post("/api/v1/images/generate", response_model=Accepted, summary="Generate an image (SDXL / InstantID)")
    def images_generate(body: ImageBody, c: Ctx = Depends(ctx)):
        with connection():
            engines = c.config.engines
            if body.character_id:
                engine = engine_for(c, engines.seed000_character, "seed000_character")
                refs, fragment = scenes.character_inputs(c.studio.settings, body.character_id)
            else:
                engine = engine_for(c, engines.seed000_image, "seed000_image")
                refs, fragment = [], ""
            params = scenes.keep_known(engine, {
                "width": body.width, "height": body.height, "num_inference_steps": body.num_inference_steps,
                "guidance_scale": body.guidance_scale, "seed": body.seed})
            request = {"engine": engine.id, "prompt": body.prompt + (f", {fragment}" if fragment else ""),
                       "negative_prompt": body.negative_prompt, "params": params}
            if refs and "ref2v" in engine.tasks:
                request["reference_images"] = refs
            elif refs:
                request["image"] = refs[0]
            job = c.service.submit(request, c.principal, source="rest:000")
            return accepted(c, job.id, engine, job.created_at)

    @router.post("/api/v1/videos/generate", response_model=Accepted, summary="Generate a multi-scene video")
    def videos_generate(body: VideoBody, c: Ctx = Depends(ctx)):
        with connection():
            engine = engine_for(c, c.config.engines.seed000_video, "seed000_video")
            job = render_video_request(EpisodeService(c.service), body.model_dump(mode="json"), c.principal,
                                       source="rest:000", engine=engine.id)
            return accepted(c, job.id, engine, job.created_at)

    @router.get("/api/v1/tasks/{task_id}", summary="Status and result of a task (video tasks add `scenes`)",
                responses={200: {"model": TaskView}, 404: {"description": "No such task"}})
    def task_status(task_id: str, c: Ctx = Depends(ctx)):
        with connection():
            return task_view(c, visible_job(c, task_id))

    @router.post("/api/v1/tasks/{task_id}/cancel", summary="Cancel a task (studio extension)",
                 responses={200: {"model": TaskView}, 404: {"description": "No such task"},
                            409: {"description": "Already finished"}})
    def task_cancel(task_id: str, c: Ctx = Depends(ctx)):
        with connection():
            job = visible_job(c, task_id)  # an episode cancels its own clip jobs at its next step
            return task_view(c, c.service.cancel(job.id, c.principal))

    @router.get("/api/v1/tasks", summary="Your tasks, newest first (studio extension)")
    def task_list(status: str | None = Query(None, pattern="^(queued|processing|completed|failed|cancelled)$"),
                  limit: int = Query(50, ge=1, le=500), c: Ctx = Depends(ctx)):
        wanted = {v: k for k, v in STATUS.items()}
        filters = {"limit": limit, "status": wanted.get(status)}
        with connection():
            return {"tasks": [job_view(c, j) for j in c.service.list(filters, c.principal)]}

    @router.get("/api/v1/health", summary="Health check", tags=["operations"])
    @handler("public")
    def health():
        try:
            with connection():
                counts = {(lane, s): n for lane, s, n in Job.select(Job.lane, Job.status, fn.COUNT(Job.id))
                          .where(Job.status.in_(("queued", "running"))).group_by(Job.lane, Job.status).tuples()}
        except Exception as exc:  # the database is the one thing health must report on
            return JSONResponse({"status": "unhealthy", "database": f"error: {type(exc).__name__}"}, 503)
        workers = {"gpu": studio.settings.gpu_pool.max_concurrent, "io": studio.settings.queue.io_workers}
        return {"status": "healthy", "version": "0.1.0", "uptime_s": round(time.time() - started, 1),
                "database": "ok", "workers_running": bool(getattr(studio, "started", False)),
                "queue": {lane: {"queued": counts.get((lane, "queued"), 0), "running": counts.get((lane, "running"), 0),
                                 "workers": workers[lane]} for lane in ("gpu", "io")},
                "engines": {e.id: e.available()[0] for e in studio.engines.values()}}

    @router.get("/metrics", summary="Prometheus metrics", tags=["operations"],
                responses={200: {"content": {"text/plain": {}}}})
    @handler("user")
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(registry), media_type=CONTENT_TYPE_LATEST)

    return router
