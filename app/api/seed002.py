"""Seed 002: the SciTiger multi-provider video service (DashScope Wan, Zhipu CogVideoX / Vidu).

    POST /api/v1/tasks/             {model, provider, parameters{...}, is_async}
    GET  /api/v1/tasks/{id}/status
    GET  /api/v1/tasks/{id}/result  → {success, message, results{task_id, status, result{id, model,
                                       created, videos[{index, url, local_path, duration}], prompt,
                                       actual_prompt, resolution, usage}, error}}

``provider`` picks the engine through ``engines.seed002`` in rest.yaml (aliyun → dashscope,
zhipuai → zhipu). The seed's image keys (``img_url``, ``first_frame_url``, ``last_frame_url``,
``image_url`` as a string or a list) become the studio's first/last/reference images; the
other parameters go to the engine as they are. ``"is_async": false`` waits for the result.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.db import Job, connection
from core.errors import ValidationError

from .common import (
    Ctx,
    check_image_ref,
    ctx,
    engine_for,
    local_str,
    media_url,
    output_file,
    seed_route,
    submit,
    validation_text,
    visible_job,
)

STATUS = {"queued": "pending", "running": "processing", "succeeded": "completed", "failed": "failed",
          "cancelled": "cancelled"}
TOLERATED = {"obj_or_bg", "request_id", "user_id"}  # seed keys the engines do without
EXAMPLES = [
    {"model": "wanx2.1-t2v-turbo", "provider": "aliyun", "is_async": True,
     "parameters": {"prompt": "一只可爱的小猫咪在草地上玩耍", "negative_prompt": "模糊, 扭曲, 低质量", "duration": 5,
                    "resolution": "720P"}},
    {"model": "wanx2.1-t2v-plus", "provider": "aliyun", "is_async": True,
     "parameters": {"prompt": "宇航员在月球上行走，高清，写实风格", "negative_prompt": "模糊, 低质量", "duration": 5,
                    "resolution": "720P", "prompt_extend": True}},
    {"model": "wanx2.1-i2v-turbo", "provider": "aliyun", "is_async": True,
     "parameters": {"prompt": "使图片动起来，高清效果", "img_url": "https://example.com/source-image.jpg",
                    "duration": 5,
                    "resolution": "720P"}},
    {"model": "wanx2.1-kf2v-plus", "provider": "aliyun", "is_async": True,
     "parameters": {"prompt": "一个女孩从森林中漫步而出，脸上洋溢着喜悦的笑容",
                    "first_frame_url": "https://example.com/first-frame.jpg",
                    "last_frame_url": "https://example.com/last-frame.jpg", "resolution": "720P",
                    "obj_or_bg": ["obj", "bg"]}},
    {"model": "cogvideox-2", "provider": "zhipuai", "is_async": True,
     "parameters": {"prompt": "一只狗狗在海边奔跑，阳光明媚，细节丰富，4K", "quality": "quality", "size": "1080x1920",
                    "fps": 30}},
    {"model": "viduq1-text", "provider": "zhipuai", "is_async": True,
     "parameters": {"prompt": "比得兔开小汽车，游走在马路上，脸上的表情充满开心喜悦", "style": "anime", "duration": "5",
                    "size": "1080x1920", "movement_amplitude": "auto"}},
    {"model": "vidu2-start-end", "provider": "zhipuai", "is_async": True,
     "parameters": {"image_url": ["https://example.com/first-frame.jpg", "https://example.com/last-frame.jpg"],
                    "prompt": "平滑过渡，高质量生成", "duration": "4", "size": "720x480",
                    "movement_amplitude": "medium", "with_audio": True}},
]


def render(request, status: int, detail, kind: str):
    if kind == "validation":
        detail = validation_text(detail)
    return JSONResponse({"success": False, "message": detail, "results": None}, status)


class CreateBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": EXAMPLES})

    model: str = Field(..., min_length=1, max_length=64, description="The provider's model id")
    provider: str = Field(..., min_length=1, max_length=32, description="aliyun (DashScope) or zhipuai")
    parameters: dict = Field(default_factory=dict, description="The provider's parameters (prompt, images, size...)")
    is_async: bool = Field(True, description="false: wait for the result before answering")


class Envelope(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "success": True, "message": "获取任务结果成功",
        "results": {"task_id": "685008a3404376ca4660b24a0123abcd", "status": "completed", "error": None,
                    "result": {"id": "d9d2877c-06b8-9df5-8246-2dadbedcf9ba", "model": "wanx2.1-t2v-turbo",
                               "created": "2025-06-16 20:08:58",
                               "videos": [{"index": 0, "url": "https://dashscope-result.oss-cn-beijing.aliyuncs.com/x.mp4",
                                           "local_path": "/data/workspace/outputs/2025-06-16/685008a3/"
                                                         "dashscope_20250616_200858_0_a1b2c3d4.mp4",
                                           "duration": 5}],
                               "prompt": "宇航员在月球上行走，高清，写实风格",
                               "actual_prompt": "宇航员在月球上行走，写实风格…",
                               "resolution": "720P",
                               "usage": {"video_count": 1, "video_duration": 5, "video_ratio": "standard"}}}}]})
    success: bool
    message: str
    results: dict | None = None


def _text(value) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def to_request(engine, body: CreateBody) -> tuple[dict, list[str], dict]:
    """The studio request for a seed 002 body, the parameter names it ignored, and what it adjusted."""
    p = dict(body.parameters)
    request: dict = {"engine": engine.id, "prompt": _text(p.pop("prompt", "")),
                     "negative_prompt": _text(p.pop("negative_prompt", ""))}
    first = p.pop("img_url", None) or p.pop("first_frame_url", None)
    last = p.pop("last_frame_url", None)
    images = p.pop("image_url", None)
    if isinstance(images, list):
        if "reference" in body.model or len(images) > 2:
            request["reference_images"] = images
        elif len(images) == 2:
            first, last = images
        elif images:
            first = images[0]
    elif images is not None:
        first = images
    if first is not None:
        request["image"] = check_image_ref("first frame", first)
    if last is not None:
        request["last_image"] = check_image_ref("last frame", last)
    for ref in request.get("reference_images", []):
        check_image_ref("image_url", ref)
    adjusted = engine.shape_seed_request(body.model, p)  # the vendor's own touch-ups (engines/base.py)
    fields = engine.Params.model_fields
    ignored = sorted(k for k in p if k in TOLERATED and k not in fields)
    params = {k: v for k, v in p.items() if k not in ignored}
    if "model" in fields:
        params["model"] = body.model
    request["params"] = params
    return request, ignored, adjusted


def status_view(c: Ctx, job: Job) -> dict:
    error = (job.error_zh if c.lang == "zh" and job.error_zh else job.error) if job.status == "failed" else None
    return {"task_id": job.id, "status": STATUS[job.status], "progress": round(job.progress, 1),
            "provider_status": job.remote_status, "created_at": local_str(job.created_at),
            "updated_at": local_str(job.updated_at), "error": error}


def result_view(c: Ctx, job: Job) -> dict:
    out = status_view(c, job)
    result = None
    if job.status == "succeeded":
        videos = []
        for i, o in enumerate(job.outputs):
            path = output_file(c, job, i)
            seconds = (round(o["frames"] / o["fps"], 2) if o.get("frames") and o.get("fps")
                       else job.params.get("duration"))
            videos.append({"index": i, "url": (o.get("meta") or {}).get("url") or media_url(c, job, i),
                           "local_path": str(path) if path and path.exists() else None, "duration": seconds,
                           "download_url": media_url(c, job, i)})
        first = job.outputs[0] if job.outputs else {}
        meta = first.get("meta") or {}
        size = job.params.get("size") or (f"{first['width']}x{first['height']}" if first.get("width") else None)
        result = {"id": job.remote_id or job.id, "model": job.params.get("model") or job.engine,
                  "created": local_str(job.created_at), "videos": videos, "prompt": job.prompt,
                  "actual_prompt": job.info.get("actual_prompt") or meta.get("actual_prompt") or job.prompt,
                  "resolution": job.params.get("resolution") or size,
                  "usage": job.info.get("usage") or {"video_count": len(videos),
                                                     "video_duration": sum(v["duration"] or 0 for v in videos)}}
        if job.info.get("cleaned"):
            result["note"] = job.info["cleaned"]
    return {"task_id": job.id, "status": out["status"], "result": result, "error": out["error"]}


def build() -> APIRouter:
    router = APIRouter(tags=["seed 002 · multi-provider video service"], route_class=seed_route(render))

    def create(body: CreateBody, c: Ctx):
        engines = c.config.engines.seed002
        engine_id = engines.get(body.provider.strip().lower())
        if engine_id is None:
            raise ValidationError(f"Unknown provider '{body.provider[:32]}'. Known: {', '.join(sorted(engines))} "
                               "(engines.seed002 in rest.yaml).",
                               f"未知的服务商“{body.provider[:32]}”。可用：{', '.join(sorted(engines))}。")
        with connection():
            engine = engine_for(c, engine_id, "seed002")
            request, ignored, adjusted = to_request(engine, body)
            job = submit(c, request, "rest:002")
        if not body.is_async:
            deadline = time.monotonic() + c.config.sync_timeout_s
            while time.monotonic() < deadline:
                with connection():
                    job = Job.get_by_id(job.id)
                if job.status in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.25)
            with connection():
                return {"success": job.status == "succeeded", "message": "任务已完成" if job.status == "succeeded"
                        else f"任务状态：{STATUS[job.status]}", "results": result_view(c, job)}
        results = {"task_id": job.id, "status": STATUS[job.status], "model": body.model, "provider": body.provider,
                   "created": local_str(job.created_at)}
        if ignored:
            results["ignored_parameters"] = ignored
        if adjusted:
            results["adjusted_parameters"] = adjusted
        return {"success": True, "message": "任务创建成功", "results": results}

    errors = {422: {"description": "Bad parameters or unknown provider"},
              503: {"description": "The provider's engine is not set up"}}

    @router.post("/api/v1/tasks/", response_model=Envelope, responses=errors, summary="Create a video task")
    def create_task(body: CreateBody, c: Ctx = Depends(ctx)):
        return create(body, c)

    @router.post("/api/v1/tasks", response_model=Envelope, include_in_schema=False)
    def create_task_no_slash(body: CreateBody, c: Ctx = Depends(ctx)):
        return create(body, c)

    @router.get("/api/v1/tasks/{task_id}/status", response_model=Envelope, summary="Status of a task",
                responses={404: {"description": "No such task"}})
    def task_status(task_id: str, c: Ctx = Depends(ctx)):
        with connection():
            return {"success": True, "message": "获取任务状态成功", "results": status_view(c, visible_job(c, task_id))}

    @router.get("/api/v1/tasks/{task_id}/result", response_model=Envelope, summary="Result of a task",
                responses={404: {"description": "No such task"}})
    def task_result(task_id: str, c: Ctx = Depends(ctx)):
        with connection():
            job = visible_job(c, task_id)
            message = "获取任务结果成功" if job.status == "succeeded" else f"任务尚未完成（{STATUS[job.status]}）"
            return {"success": True, "message": message, "results": result_view(c, job)}

    return router
