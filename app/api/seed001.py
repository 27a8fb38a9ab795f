"""Seed 001: the Wan2.1-T2V-1.3B service (SiliconFlow-style ``/video/*`` routes), and the
``/videos/<file>`` downloads every seed's result URLs point at.

    POST /video/submit   {model, prompt, image_size, num_frames, guidance_scale, infer_steps, seed?}
                         → 202 {"requestId"}; the seed's parameter table is enforced exactly (422)
    POST /video/status   {requestId} → {status: InQueue|InProgress|Succeed|Failed, reason, position,
                         results: {videos: [{url}], timings: {inference}, seed}}
    POST|DELETE /video/cancel {requestId} → {status: "Succeed"}
    GET  /videos/<job>[_<i>][_thumb].<ext>
"""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.db import Job, connection
from core.errors import NotFound

from .common import Ctx, ctx, engine_for, media_url, output_file, run_seconds, seed_route, submit, visible_job

MODEL = "Wan2.1-T2V-1.3B"
STATUS = {"queued": "InQueue", "running": "InProgress", "succeeded": "Succeed", "failed": "Failed",
          "cancelled": "Failed"}
MEDIA_NAME = re.compile(r"^(?P<id>[0-9a-f]{32})(?:_(?P<index>\d{1,2}))?(?P<thumb>_thumb)?\.(?P<ext>[a-z0-9]{2,5})$")


def render(request, status: int, detail, kind: str):
    if kind == "validation":
        return JSONResponse({"detail": jsonable_encoder(detail)}, 422)
    if kind == "engine_unavailable":
        status = 500  # the seed's table: 500 = server-side error (no GPU memory, no weights...)
    return JSONResponse({"detail": detail}, status)


class SubmitBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": MODEL, "prompt": "A beautiful sunset over the mountains", "image_size": "480x832",
        "num_frames": 81, "guidance_scale": 5.0, "infer_steps": 50}]})

    model: str = Field(MODEL, max_length=64, description=f"Only {MODEL} is served here")
    prompt: str = Field(..., min_length=10, max_length=500, description="What the video shows (10–500 characters)")
    image_size: Literal["480x832", "832x480"] = Field(..., description="Width x height")
    num_frames: int = Field(..., ge=24, le=120, description="Frames (24–120); Wan uses the nearest 4k+1")
    guidance_scale: float = Field(..., ge=1.0, le=20.0, description="Text guidance (1.0–20.0)")
    infer_steps: int = Field(..., ge=20, le=100, description="Denoising steps (20–100)")
    seed: int | None = Field(None, ge=0, le=2147483647, description="Seed; omitted = random")

    @field_validator("model")
    @classmethod
    def _served_model(cls, v: str) -> str:
        if v.strip().lower() != MODEL.lower():
            raise ValueError(f"only {MODEL} is served by this route")
        return MODEL


class RequestIdBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"requestId": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"}]})

    requestId: str = Field(..., min_length=1, max_length=64, description="The id /video/submit returned")


class SubmitReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"requestId": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"}]})
    requestId: str


class StatusReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "Succeed", "reason": "", "position": 0,
        "results": {"videos": [{"url": "http://localhost:8088/videos/a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6.mp4"}],
                    "timings": {"inference": 120}, "seed": 42}}]})
    status: str
    reason: str = ""
    position: int = 0
    results: dict | None = None


def wan_frames(n: int) -> int:
    """The nearest frame count Wan accepts (4k+1)."""
    return 4 * max(0, round((n - 1) / 4)) + 1


def to_request(body: SubmitBody, engine_id: str) -> dict:
    width, height = (int(v) for v in body.image_size.split("x"))
    params = {"width": width, "height": height, "num_frames": wan_frames(body.num_frames),
              "guidance_scale": body.guidance_scale, "num_inference_steps": body.infer_steps}
    if body.seed is not None:
        params["seed"] = body.seed
    return {"engine": engine_id, "prompt": body.prompt, "params": params}


def status_view(c: Ctx, job: Job) -> dict:
    out = {"status": STATUS[job.status], "reason": "", "position": 0, "results": None}
    if job.status == "queued":
        out["position"] = (Job.select().where(Job.lane == job.lane, Job.status == "queued",
                                              Job.created_at < job.created_at).count())
    if job.status == "failed":
        out["reason"] = job.error_zh if c.lang == "zh" and job.error_zh else (job.error or "failed")
    elif job.status == "cancelled":
        out["reason"] = "已取消" if c.lang == "zh" else "Cancelled"
    elif job.status == "succeeded":
        videos = [{"url": media_url(c, job, i)} for i in range(len(job.outputs))]
        if job.info.get("cleaned"):
            videos = []
            out["reason"] = job.info["cleaned"]
        out["results"] = {"videos": videos, "timings": {"inference": run_seconds(job)},
                          "seed": job.params.get("seed")}
    return out


def build() -> APIRouter:
    router = APIRouter(tags=["seed 001 · Wan2.1 T2V service"], route_class=seed_route(render))
    errors = {401: {"description": "Missing or wrong API key"}, 404: {"description": "No such task"},
              422: {"description": "A parameter is outside the seed's table"},
              500: {"description": "Server-side error (no weights, out of GPU memory...)"}}

    @router.post("/video/submit", status_code=202, response_model=SubmitReply, responses=errors,
                 summary="Submit a text-to-video job (Wan2.1-T2V-1.3B)")
    def video_submit(body: SubmitBody, c: Ctx = Depends(ctx)):
        with connection():
            engine = engine_for(c, c.config.engines.seed001, "seed001")
            job = submit(c, to_request(body, engine.id), "rest:001")
        return {"requestId": job.id}

    @router.post("/video/status", response_model=StatusReply, responses=errors, summary="Status of a job")
    def video_status(body: RequestIdBody, c: Ctx = Depends(ctx)):
        with connection():
            return status_view(c, visible_job(c, body.requestId))

    def cancel(body: RequestIdBody, c: Ctx):
        with connection():
            job = visible_job(c, body.requestId)
            c.service.cancel(job.id, c.principal)
        return {"status": "Succeed"}

    @router.post("/video/cancel", responses={**errors, 409: {"description": "The job already finished"}},
                 summary="Cancel a job")
    def video_cancel(body: RequestIdBody, c: Ctx = Depends(ctx)):
        return cancel(body, c)

    @router.delete("/video/cancel", responses={**errors, 409: {"description": "The job already finished"}},
                   summary="Cancel a job (DELETE, as the seed's Postman guide does)")
    def video_cancel_delete(body: RequestIdBody, c: Ctx = Depends(ctx)):
        return cancel(body, c)

    @router.get("/videos/{name}", summary="Download a result (video, image or thumbnail)",
                responses={200: {"content": {"video/mp4": {}, "image/png": {}, "image/jpeg": {}}},
                           404: {"description": "No such file (or removed by the retention sweep)"}})
    def media(name: str, c: Ctx = Depends(ctx)):
        m = MEDIA_NAME.match(name)
        if not m:
            raise NotFound("No such file.", "没有这个文件。")
        with connection():
            job = visible_job(c, m.group("id"))
            path = output_file(c, job, int(m.group("index") or 0), bool(m.group("thumb")))
            if job.info.get("cleaned"):
                raise NotFound(job.info["cleaned"], job.info.get("cleaned_zh"))
        if path is None or not path.is_file() or path.suffix.lower() != "." + m.group("ext"):
            raise NotFound("No such file.", "没有这个文件。")
        return FileResponse(path, filename=name)

    return router
