"""Seed 004: the Tencent Cloud VOD AIGC video service.

    POST /aigc/create  {prompt, model_name, model_version, duration, resolution, enhance_prompt}
                       → {task_id, status, Response{TaskId, RequestId}}
    POST /aigc/task    {task_id} → {task_id, status, progress, video_url, error, Response{TaskType,
                       Status, AigcVideoTask{Status, Progress, ErrCode, Message, Output{FileInfos}}, RequestId}}

The seed documents only the requests; the answers carry both a flat reading (``task_id``,
``status``, ``video_url``) and Tencent's own ``Response`` shape, so scripts written either way
work. Errors are ``{"detail": "..."}``; missing Tencent credentials answer 500 with
"Missing credentials: set TENCENTCLOUD_SECRET_ID ...", as the seed's FAQ describes.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.db import Job, connection

from .common import Ctx, check_image_ref, ctx, engine_for, media_url, seed_route, submit, visible_job

STATUS = {"queued": "WAITING", "running": "PROCESSING", "succeeded": "FINISH", "failed": "FINISH",
          "cancelled": "ABORTED"}


def render(request, status: int, detail, kind: str):
    if kind == "validation":
        return JSONResponse({"detail": jsonable_encoder(detail)}, 422)
    if kind == "engine_unavailable" and str(detail).startswith(("Missing credentials", "缺少凭据")):
        status = 500
    return JSONResponse({"detail": detail}, status)


class CreateBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "prompt": "一个小男孩在街上跑步", "model_name": "Hailuo", "model_version": "2.3", "duration": 6,
        "resolution": "768P", "enhance_prompt": "Enabled"}]})

    prompt: str = Field(..., min_length=1, max_length=2000)
    model_name: Literal["Hailuo", "Kling", "Vidu", "OS", "GV", "Hunyuan"] = "Hailuo"
    model_version: str | None = Field(None, max_length=32)
    duration: int | None = Field(None, ge=1, le=60)
    resolution: str | None = Field(None, max_length=8, description="720P / 768P / 1080P, by model")
    enhance_prompt: Literal["Enabled", "Disabled"] | bool | None = None
    aspect_ratio: str | None = Field(None, max_length=8)
    negative_prompt: str = Field("", max_length=2000)
    image_url: str | None = Field(None, description="First frame (image-to-video): URL or data URI")
    last_frame_url: str | None = Field(None, description="Last frame: URL or data URI")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class TaskBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"task_id": "1234567890abcdef1234567890abcdef"}]})
    task_id: str = Field(..., min_length=1, max_length=64)


class CreateReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "task_id": "1234567890abcdef1234567890abcdef", "status": "WAITING",
        "Response": {"TaskId": "1234567890abcdef1234567890abcdef", "RequestId": "6ca31e3a-..."}}]})
    task_id: str
    status: str
    Response: dict


class TaskReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "task_id": "1234567890abcdef1234567890abcdef", "status": "FINISH", "progress": 100,
        "video_url": "http://localhost:7860/videos/1234567890abcdef1234567890abcdef.mp4", "error": None,
        "Response": {"TaskType": "AigcVideoTask", "Status": "FINISH",
                     "AigcVideoTask": {"Status": "FINISH", "Progress": 100, "ErrCode": 0, "Message": "",
                                       "Output": {"FileInfos": [{"FileUrl": "http://localhost:7860/videos/"
                                                                            "1234567890abcdef1234567890abcdef.mp4"}]}},
                     "RequestId": "6ca31e3a-..."}}]})
    task_id: str
    status: str
    progress: float
    video_url: str | None = None
    error: str | None = None
    Response: dict


def to_request(engine, body: CreateBody) -> dict:
    enhance = body.enhance_prompt
    params = {"model": body.model_name, "model_version": body.model_version, "duration": body.duration,
              "resolution": body.resolution, "aspect_ratio": body.aspect_ratio, "seed": body.seed,
              "enhance_prompt": (enhance == "Enabled") if isinstance(enhance, str) else enhance}
    fields = engine.Params.model_fields
    request = {"engine": engine.id, "prompt": body.prompt, "negative_prompt": body.negative_prompt,
               "params": {k: v for k, v in params.items() if v is not None and k in fields}}
    if body.image_url:
        request["image"] = check_image_ref("image_url", body.image_url)
    if body.last_frame_url:
        request["last_image"] = check_image_ref("last_frame_url", body.last_frame_url)
    return request


def task_view(c: Ctx, job: Job) -> dict:
    url = media_url(c, job) if job.status == "succeeded" and not job.info.get("cleaned") else None
    error = None
    if job.status == "failed":
        error = job.error_zh if c.lang == "zh" and job.error_zh else job.error
    elif job.status == "cancelled":
        error = "Cancelled"
    status = STATUS[job.status]
    files = [{"FileUrl": media_url(c, job, i), "OriginalUrl": (o.get("meta") or {}).get("url")}
             for i, o in enumerate(job.outputs)] if url else []
    task = {"Status": status, "Progress": round(job.progress), "ErrCode": 0 if job.status != "failed" else 1,
            "ErrCodeExt": job.error_code if job.status == "failed" else "", "Message": error or "",
            "Output": {"FileInfos": files}}
    return {"task_id": job.id, "status": status, "progress": round(job.progress, 1), "video_url": url, "error": error,
            "Response": {"TaskType": "AigcVideoTask", "Status": status, "AigcVideoTask": task,
                         "RequestId": str(uuid.uuid4())}}


def build() -> APIRouter:
    router = APIRouter(tags=["seed 004 · Tencent VOD AIGC service"], route_class=seed_route(render))
    errors = {422: {"description": "Invalid parameters"},
              500: {"description": "Missing credentials (TENCENTCLOUD_SECRET_ID / _KEY) or a server error"},
              503: {"description": "The tencent-vod engine is not installed"}}

    @router.post("/aigc/create", response_model=CreateReply, responses=errors, summary="Create an AIGC video task")
    def aigc_create(body: CreateBody, c: Ctx = Depends(ctx)):
        with connection():
            engine = engine_for(c, c.config.engines.seed004, "seed004")
            job = submit(c, to_request(engine, body), "rest:004")
        return {"task_id": job.id, "status": STATUS[job.status],
                "Response": {"TaskId": job.id, "RequestId": str(uuid.uuid4())}}

    @router.post("/aigc/task", response_model=TaskReply, responses={**errors, 404: {"description": "No such task"}},
                 summary="Query an AIGC video task")
    def aigc_task(body: TaskBody, c: Ctx = Depends(ctx)):
        with connection():
            return task_view(c, visible_job(c, body.task_id))

    return router
