"""Seed 003: the video generation API over Volcengine Ark (Seedance).

    POST /api/v1/videos/tasks        {prompt, image_url?} → 201 {code: 0, message, data{id, model, status:
                                     "pending", created_at, updated_at, result, error}}
    GET  /api/v1/videos/tasks/{id}   → 200, the same envelope; status pending|processing|completed|failed,
                                     result {video_url, duration, resolution}
    GET  /api/v1/videos/health       → {status: "healthy", service: "video_generation", message}
    errors: {"detail": "..."} with 400 (bad parameters), 404, 503 (engine not set up), 500

Prompt flags (``--duration 5 --rs 720p``) go to the Ark engine as they are; it parses them.
Times are Unix seconds, as in the seed.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.access import handler
from app.db import Job, connection
from core.errors import ValidationError

from .common import (
    Ctx,
    check_image_ref,
    ctx,
    engine_for,
    media_url,
    seed_route,
    submit,
    unix,
    validation_text,
    visible_job,
)

STATUS = {"queued": "pending", "running": "processing", "succeeded": "completed", "failed": "failed",
          "cancelled": "failed"}
EXAMPLE_DATA = {"id": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "model": "ep-20260129105436-445p4", "status": "pending",
                "created_at": 1706601234, "updated_at": None, "result": None, "error": None}


def render(request, status: int, detail, kind: str):
    if kind == "validation":
        return JSONResponse({"detail": validation_text(detail)}, 400)
    if status == 422:
        status = 400  # the seed answers every parameter problem with 400
    if kind == "engine_unavailable":
        detail = f"Failed to connect to video generation service: {detail}"
    if kind == "internal":
        detail = detail if detail.startswith("Unexpected error") else f"Unexpected error: {detail}"
    return JSONResponse({"detail": detail}, status)


class CreateBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"prompt": "A cat playing piano in a cozy living room"},
        {"prompt": "A beautiful sunset scene with moving clouds", "image_url": "https://example.com/image.jpg"},
        {"prompt": "A beautiful sunset scene with moving clouds --duration 5",
         "image_url": "https://example.com/image.jpg"}]})

    prompt: str = Field(..., max_length=4000, description="What the video shows; Ark flags like --duration 5 allowed")
    image_url: str | None = Field(None, description="First frame: an https URL or a data:image/...;base64 URI")


class Envelope(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"code": 0, "message": "Video generation task created successfully", "data": EXAMPLE_DATA},
        {"code": 0, "message": "Task query successful",
         "data": {**EXAMPLE_DATA, "status": "completed", "updated_at": 1706601350,
                  "result": {"video_url": "http://localhost:7860/videos/a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6.mp4",
                             "duration": 5.0, "resolution": "1920x1080"}}}]})
    code: int
    message: str
    data: dict | None = None


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "healthy", "service": "video_generation", "message": "Service is running normally"}]})
    status: str
    service: str
    message: str


def task_data(c: Ctx, job: Job) -> dict:
    result = None
    if job.status == "succeeded" and job.outputs and not job.info.get("cleaned"):
        first = job.outputs[0]
        duration = round(first["frames"] / first["fps"], 2) if first.get("frames") and first.get("fps") else None
        result = {"video_url": media_url(c, job), "duration": duration,
                  "resolution": f"{first['width']}x{first['height']}" if first.get("width") else None,
                  "original_url": (first.get("meta") or {}).get("url")}
    error = None
    if job.status == "failed":
        error = job.error_zh if c.lang == "zh" and job.error_zh else job.error
    elif job.status == "cancelled":
        error = "Cancelled"
    elif job.status == "succeeded" and job.info.get("cleaned"):
        error = job.info["cleaned"]
    updated = unix(job.updated_at) if job.status != "queued" else None
    return {"id": job.id, "model": job.params.get("model") or job.engine, "status": STATUS[job.status],
            "created_at": unix(job.created_at), "updated_at": updated, "result": result, "error": error}


def build(studio) -> APIRouter:
    router = APIRouter(tags=["seed 003 · Ark video generation API"], route_class=seed_route(render))
    errors = {400: {"description": "Invalid parameters"}, 503: {"description": "Video service not reachable / set up"},
              500: {"description": "Unexpected error"}}

    @router.post("/api/v1/videos/tasks", status_code=201, response_model=Envelope, responses=errors,
                 summary="Create a video generation task")
    def create_task(body: CreateBody, c: Ctx = Depends(ctx)):
        if not body.prompt.strip():
            raise ValidationError("Prompt cannot be empty", "提示词不能为空")
        if body.image_url is not None:
            check_image_ref("image_url", body.image_url)
        with connection():
            engine = engine_for(c, c.config.engines.seed003, "seed003")
            params = {"model": c.config.seed003_model} if c.config.seed003_model else {}
            request = {"engine": engine.id, "prompt": body.prompt, "params": params}
            if body.image_url:
                request["image"] = body.image_url
            job = submit(c, request, "rest:003")
            return {"code": 0, "message": "Video generation task created successfully", "data": task_data(c, job)}

    @router.get("/api/v1/videos/tasks/{task_id}", response_model=Envelope,
                responses={**errors, 404: {"description": "No such task"}}, summary="Query a video task")
    def get_task(task_id: str, c: Ctx = Depends(ctx)):
        with connection():
            return {"code": 0, "message": "Task query successful", "data": task_data(c, visible_job(c, task_id))}

    @router.get("/api/v1/videos/health", response_model=Health, responses={503: {"model": Health}},
                summary="Health check", tags=["operations"])
    @handler("public")
    def health():
        engine = studio.engines.get(studio.ops.config.engines.seed003)
        ok, reason = engine.available() if engine else (False, "engine not installed")
        if not ok:
            return JSONResponse({"status": "unhealthy", "service": "video_generation",
                                 "message": f"Video generation engine not ready: {reason}"}, 503)
        return {"status": "healthy", "service": "video_generation", "message": "Service is running normally"}

    return router
