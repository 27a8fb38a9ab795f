"""Alibaba DashScope (Model Studio) Wan video: text, first frame, first + last frame.

Create ``POST {base}/services/aigc/video-generation/video-synthesis`` (kf2v models:
``.../image2video/video-synthesis``) with ``X-DashScope-Async: enable``; query
``GET {base}/tasks/{id}``; cancel ``POST {base}/tasks/{id}/cancel`` (PENDING only).
There is no idempotency key, so a create whose answer was lost (a timeout, a cut answer, a 5xx,
or the studio stopping mid-request) is not sent again blindly: the engine lists its tasks
(``GET {base}/tasks`` by model and time, as the SDK's ``list``) and adopts the one that matches,
or fails saying the task may exist (``engines.cloud.safecreate``).
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Literal

from pydantic import Field

from core.errors import ProviderError, ValidationError
from engines.base import EngineRequest, Params, RemoteState
from engines.cloud import aio, http, modeltable, safecreate, steps
from engines.cloud.keyed import KeyedCloudEngine
from engines.cloud.dashscope_errors import KEY, VENDOR, _remember_request_id, error_of, moderation_error
from engines.cloud.modeltable import ModelSpec

DEFAULT_BASE = "https://dashscope.aliyuncs.com/api/v1"
MAX_PROMPT, MAX_NEGATIVE = 800, 500
MAX_IMAGE_BYTES = 10 * 2**20
LOOKUP_PAGES, LOOKUP_PAGE_SIZE, LOOKUP_MAX_QUERIES = 5, 50, 5
BEIJING = timezone(timedelta(hours=8))

SIZES = {
    "480P": ("832*480", "480*832", "624*624"),
    "720P": ("1280*720", "720*1280", "960*960", "1088*832", "832*1088"),
    "1080P": ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"),
}


TASK_WORDS = {"t2v": ("text-to-video", "文生视频"), "i2v": ("image-to-video", "图生视频"),
              "kf2v": ("first-and-last-frame", "首尾帧生视频"), "ref2v": ("reference-to-video", "参考生视频")}
AUDIO_URL = re.compile(r"^https?://\S+$")
STATUS = {"PENDING": "queued", "SUSPENDED": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded",
          "FAILED": "failed", "CANCELED": "cancelled", "UNKNOWN": "failed"}


class DashScopeParams(Params):
    model: str = Field("wanx2.1-t2v-turbo", pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{1,63}$",
                       description="Wan model (engines/cloud/models/dashscope.yaml); t2v models take text only, i2v "
                       "a first frame, kf2v a first and a last frame, r2v reference images / videos",
                       json_schema_extra={"choices": modeltable.model_choices("dashscope")})
    size: str | None = Field(None, pattern=r"^\d{3,4}\*\d{3,4}$",
                             description="Text-to-video frame size 'W*H' (e.g. 1280*720); empty for the default")
    resolution: Literal["480P", "720P", "1080P"] | None = Field(
        None, description="Resolution tier; image models use it instead of size")
    duration: int | None = Field(None, ge=2, le=15, description="Seconds (by model: wan2.1/2.2 5; wan2.5 5 or 10; "
                                                                "wan2.6 up to 15)")
    seed: int | None = Field(None, ge=0, le=2147483647, description="Seed; empty for a random one")
    prompt_extend: bool = Field(True, description="Let DashScope rewrite the prompt for better results")
    watermark: bool = Field(False, description="Add the 'AI generated' watermark")
    audio: bool | None = Field(None, description="wan2.5/2.6: make sound with the video (on by default)")
    audio_url: str | None = Field(None, max_length=2048, description="wan2.5+: a public MP3/WAV URL the video "
                                  "follows (wan2.7: the driving audio)")
    first_clip_url: str | None = Field(None, max_length=2048, description="wan2.7-i2v: a video URL the new video "
                                       "continues from")
    reference_video_urls: list[str] = Field(default_factory=list, max_length=3,
                                            description="wan2.7-r2v: reference video URLs")


def _invalid(en: str, zh: str) -> ValidationError:
    return ValidationError(en, zh)


class DashScopeEngine(KeyedCloudEngine, vendor=VENDOR, keys=(KEY,), base_env="DASHSCOPE_HTTP_BASE_URL",
                      default_base=DEFAULT_BASE, content_type="application/json"):
    id = "dashscope"
    async_chain = True  # create, polls, downloads on the cloud loop (app/cloud_chain.py)
    title = "DashScope Wan (Alibaba Model Studio)"
    tasks = ("t2v", "i2v", "kf2v", "ref2v")
    Params = DashScopeParams
    can_cancel = True

    def _headers(self, create: bool = False) -> dict:
        return self.auth_headers({"X-DashScope-Async": "enable"} if create else None)

    # --- validation -----------------------------------------------------------------
    def model_spec(self, model: str) -> ModelSpec | None:
        return modeltable.for_settings(self.id, self.settings).spec(model, modeltable.allow_unknown(self.settings))

    @staticmethod
    def task_of(request: EngineRequest) -> str:
        if request.image("reference") or request.params.reference_video_urls:
            return "ref2v"
        first, last = request.image("first_frame"), request.image("last_frame")
        return "kf2v" if first and last else "i2v" if first or last else "t2v"

    def check(self, request: EngineRequest) -> None:
        p: DashScopeParams = request.params
        spec = self.model_spec(p.model)
        task = self.task_of(request)
        if spec is not None:
            self._check_task(p.model, spec, task, request)
        if task == "t2v" and not request.prompt.strip():
            raise _invalid("Write a prompt first.", "请先填写提示词。")
        if len(request.prompt) > MAX_PROMPT:
            raise _invalid(f"The prompt is {len(request.prompt)} characters; {VENDOR} accepts at most {MAX_PROMPT}.",
                           f"提示词 {len(request.prompt)} 字，{VENDOR} 最多 {MAX_PROMPT} 字。")
        if len(request.negative_prompt) > MAX_NEGATIVE:
            raise _invalid(f"The negative prompt is {len(request.negative_prompt)} characters; at most "
                           f"{MAX_NEGATIVE}.", f"反向提示词 {len(request.negative_prompt)} 字，最多 {MAX_NEGATIVE} 字。")
        for url in [p.audio_url, p.first_clip_url, *p.reference_video_urls]:
            if url is not None and not AUDIO_URL.match(url):
                raise _invalid(f"{url[:60]}: audio and video inputs are public http(s) URLs.",
                               f"{url[:60]}：音频和视频输入须为公开的 http(s) 链接。")
        if spec is not None:
            self._check_settings(p, spec, task)
        for image in request.images:
            http.check_image_size(image, vendor=VENDOR, max_bytes=MAX_IMAGE_BYTES)

    def _check_task(self, model: str, spec: ModelSpec, task: str, request: EngineRequest) -> None:
        first, last = request.image("first_frame"), request.image("last_frame")
        if task in spec.tasks:
            if task == "ref2v":
                refs = sum(1 for im in request.images if im.role == "reference")
                if refs > spec.max_refs or len(request.params.reference_video_urls) > spec.max_ref_videos:
                    raise _invalid(f"{model} takes at most {spec.max_refs} reference images and "
                                   f"{spec.max_ref_videos} reference videos.",
                                   f"{model} 最多 {spec.max_refs} 张参考图、{spec.max_ref_videos} 段参考视频。")
            return
        main = spec.tasks[0]
        en, zh = TASK_WORDS[main]
        if task == "ref2v":
            raise _invalid(f"{model} does not take reference images.", f"{model} 不支持参考图。")
        if main == "t2v":
            raise _invalid(f"{model} is a {en} model and takes no image; choose an i2v or kf2v model.",
                           f"{model} 是{zh}模型，不接受图片；请选择 i2v 或 kf2v 模型。")
        if main == "i2v" and (not first or last):
            raise _invalid(f"{model} is an {en} model: give exactly one first-frame image "
                           "(for first and last frames choose a kf2v model).",
                           f"{model} 是{zh}模型：需要且仅需要一张首帧图片（首尾帧请选 kf2v 模型）。")
        if main == "kf2v":
            raise _invalid(f"{model} needs a first frame and a last frame image.", f"{model} 需要首帧和尾帧两张图片。")
        raise _invalid(f"{model} is a {en} model; this request is {TASK_WORDS[task][0]}.",
                       f"{model} 是{zh}模型；当前请求为{TASK_WORDS[task][1]}。")

    def _check_settings(self, p: DashScopeParams, spec: ModelSpec, task: str) -> None:
        tiers = ", ".join(spec.resolutions)
        if p.resolution and spec.resolutions and p.resolution not in spec.resolutions:
            raise _invalid(f"{p.model} supports resolution {tiers}, not {p.resolution}.",
                           f"{p.model} 支持的分辨率为 {tiers}，不支持 {p.resolution}。")
        if p.size:
            if task != "t2v":
                raise _invalid(f"{p.model} takes a resolution ({tiers}), not a size.",
                               f"{p.model} 使用分辨率（{tiers}）而不是尺寸。")
            allowed = [s for r in spec.resolutions for s in SIZES.get(r, ()) if not p.resolution or r == p.resolution]
            if p.size not in allowed:
                raise _invalid(f"{p.model} does not make {p.size}; sizes: {', '.join(allowed)}.",
                               f"{p.model} 不支持尺寸 {p.size}；可选：{', '.join(allowed)}。")
        if p.duration is not None and spec.durations and p.duration not in spec.durations:
            allowed_d = ", ".join(str(d) for d in spec.durations)
            raise _invalid(f"{p.model} makes videos of {allowed_d} s, not {p.duration} s.",
                           f"{p.model} 支持的时长为 {allowed_d} 秒，不支持 {p.duration} 秒。")
        asked = {"audio": p.audio is not None, "audio_url": p.audio_url is not None,
                 "first_clip_url": p.first_clip_url is not None, "reference_video_urls": bool(p.reference_video_urls)}
        for name in sorted(k for k, v in asked.items() if v and k not in spec.fields):
            raise _invalid(f"{p.model} has no '{name}' setting; leave it empty.",
                           f"{p.model} 不支持参数“{name}”，请留空。")

    # --- create ---------------------------------------------------------------------
    def shape_seed_request(self, model: str, params: dict) -> dict:
        """Seed scripts write sizes as ``1280x720``; DashScope's are ``1280*720``."""
        if isinstance(params.get("size"), str) and "x" in params["size"].lower():
            params["size"] = params["size"].replace("x", "*").replace("X", "*")
        return {}

    def create_body(self, request: EngineRequest) -> tuple[str, dict]:
        p: DashScopeParams = request.params
        spec = self.model_spec(p.model)
        task = self.task_of(request)
        inputs: dict = {"prompt": request.prompt}
        if request.negative_prompt:
            inputs["negative_prompt"] = request.negative_prompt
        params: dict = {"prompt_extend": p.prompt_extend, "watermark": p.watermark}
        path = "services/aigc/video-generation/video-synthesis"

        def image(im) -> str:
            return http.image_payload(im, vendor=VENDOR, max_bytes=MAX_IMAGE_BYTES)

        if spec is not None and spec.shape == "media":  # wan2.7: input.media[] of {type, url}
            inputs["media"] = media_list(request, image)
            if p.resolution:
                params["resolution"] = p.resolution
        elif task == "t2v":
            size = p.size or (SIZES[p.resolution][0] if p.resolution else None)
            if size:
                params["size"] = size
        else:
            if task == "kf2v":
                inputs["first_frame_url"], inputs["last_frame_url"] = (image(request.image("first_frame")),
                                                                       image(request.image("last_frame")))
                path = "services/aigc/image2video/video-synthesis"
            else:
                inputs["img_url"] = image(request.image("first_frame") or request.images[0])
            if p.resolution:
                params["resolution"] = p.resolution
        if p.audio_url and not (spec is not None and spec.shape == "media"):
            inputs["audio_url"] = p.audio_url
        if p.audio is not None:
            params["audio"] = p.audio
        if p.duration is not None:
            params["duration"] = p.duration
        if p.seed is not None:
            params["seed"] = p.seed
        return f"{self.base_url()}/{path}", {"model": p.model, "input": inputs, "parameters": params}

    def create_plan(self, request: EngineRequest) -> safecreate.CreatePlan | str:
        note = self.journal.load(request.job_id) or {}
        if note.get("state") == "created" and note.get("remote_id"):
            return str(note["remote_id"])  # answered before a crash, never committed: follow it
        url, body = self.create_body(request)
        headers = self._headers(create=True)
        key = self.key()
        refs: dict[int, str] = {}

        def task_id(answer: dict) -> str:
            found = (answer.get("output") or {}).get("task_id")
            if not found:
                raise ProviderError(f"{VENDOR} accepted the request but returned no task id.",
                                    f"{VENDOR} 接受了请求但未返回任务 ID。", vendor_code="no_task_id")
            return str(found)

        def send(generation: int) -> steps.Io:
            return steps.json_call("POST", url, vendor=VENDOR, headers=headers, json=body, idempotent=False,
                                   error_of=lambda r: _remember_request_id(r, refs, generation, key), then=task_id)

        return safecreate.CreatePlan(engine_id=self.id, vendor=VENDOR, send=send, request_ref=lambda g: refs.get(g),
                                     lookup=lambda note: self.find_created(request, note))

    def allow_resend(self, job_id: str) -> None:
        """"Retry anyway": the next start() sends a new create without looking for the earlier one."""
        safecreate.allow_resend(self.journal, job_id)

    def find_created(self, request: EngineRequest, note: dict) -> steps.Steps:
        """Unclaimed tasks of this model created in this job's send window whose prompt (when the task
        shows it) is this job's, with their creation time: ``GET {base}/tasks`` (the SDK's ``list``),
        then each task's query. As steps: ``steps.run(...)`` or ``await steps.arun(...)``."""
        slack = safecreate.lookup_slack_s()
        since = float(note.get("first_sent_at") or note.get("sent_at") or time.time()) - slack
        until = time.time() + slack
        windows = safecreate.send_windows(note) or [(since, until)]
        taken = safecreate.claimed_ids(self.journal, exclude_job=request.job_id)
        key = self.key()
        found: list[tuple[str, float | None]] = []

        def get(path: str, what: str, params: dict | None = None) -> steps.Io:
            return steps.json_call("GET", f"{self.base_url()}/{path}", vendor=VENDOR, headers=self._headers(),
                                   params=params, error_of=lambda r: error_of(r, key), what=f"{VENDOR} {what}",
                                   retries=safecreate.lookup_attempts())

        for page in range(1, LOOKUP_PAGES + 1):
            query = {"model_name": request.params.model, "start_time": _bj_time(since),
                     "end_time": _bj_time(until), "page_no": page, "page_size": LOOKUP_PAGE_SIZE}
            data = yield get("tasks", "task list", query)
            rows = [row for row in (data.get("data") or []) if isinstance(row, dict)]
            for row in rows:
                task_id = str(row.get("task_id") or "")
                if not task_id or task_id in taken or row.get("model_name") not in (None, request.params.model):
                    continue
                created = _epoch(row.get("gmt_create"))
                if created is not None and not any(lo <= created <= hi for lo, hi in windows):
                    continue
                if len(found) >= LOOKUP_MAX_QUERIES:  # this many cannot be told apart anyway: stop asking
                    found.append((task_id, created))
                    continue
                task = yield get(f"tasks/{task_id}", "query")
                shown = (task.get("output") or {}).get("orig_prompt")
                if shown is None or shown == request.prompt:
                    found.append((task_id, created))
            if page >= int(data.get("total_page") or 1) or not rows:
                break
        return found

    # --- poll / collect / cancel ----------------------------------------------------
    def poll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        key = self.key()
        answer = http.with_retries(lambda: http.send_json(
            "GET", f"{self.base_url()}/tasks/{remote_id}", vendor=VENDOR, headers=self._headers(),
            error_of=lambda r: error_of(r, key)), what=f"{VENDOR} query")
        return self.after_poll(self._state(answer, key), request)

    async def apoll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        """``poll`` on the cloud loop (``engines.cloud.aio``): no thread waits for the answer."""
        key = self.key()
        answer = await aio.with_retries(lambda: aio.send_json(
            "GET", f"{self.base_url()}/tasks/{remote_id}", vendor=VENDOR, headers=self._headers(),
            error_of=lambda r: error_of(r, key)), what=f"{VENDOR} query")
        return await self.aafter_poll(self._state(answer, key), request)

    def _state(self, answer: dict, key: str | None) -> RemoteState:
        return task_state(answer, key)

    def task_ended(self, job_id: str) -> None:
        self.journal.clear(job_id)

    def output_meta(self, state: RemoteState, request: EngineRequest, index: int) -> dict:
        return {"model": request.params.model, "actual_prompt": state.info.get("actual_prompt")}

    def cancel_remote(self, remote_id: str) -> bool:
        key = self.key()
        try:
            http.send_json("POST", f"{self.base_url()}/tasks/{remote_id}/cancel", vendor=VENDOR,
                           headers=self._headers(), error_of=lambda r: error_of(r, key))
        except ProviderError:
            return False  # not PENDING any more (or refused): the local cancel still stops polling
        return True

    def poll_delay(self, polls: int) -> float:
        """The SDK's schedule: 1 s, doubling every third poll, up to 5 s (configurable)."""
        ceiling = float(os.environ.get("XIANYING_DASHSCOPE_POLL_MAX") or 5.0)
        return min(2.0 ** ((polls + 1) // 3), ceiling) * http.poll_scale()


def media_list(request: EngineRequest, image) -> list[dict]:
    """wan2.7's ``input.media``: first_frame, last_frame, driving_audio, first_clip (i2v) or
    reference_image / reference_video (r2v), each ``{"type", "url"}``, in that order."""
    p: DashScopeParams = request.params
    media = []
    for role, kind in (("first_frame", "first_frame"), ("last_frame", "last_frame")):
        if request.image(role):
            media.append({"type": kind, "url": image(request.image(role))})
    if p.audio_url:
        media.append({"type": "driving_audio", "url": p.audio_url})
    if p.first_clip_url:
        media.append({"type": "first_clip", "url": p.first_clip_url})
    media += [{"type": "reference_image", "url": image(im)} for im in request.images if im.role == "reference"]
    media += [{"type": "reference_video", "url": url} for url in p.reference_video_urls]
    return media


def _bj_time(ts: float) -> str:
    """The task list's time format: ``YYYYMMDDhhmmss``, Beijing time."""
    return datetime.fromtimestamp(ts, BEIJING).strftime("%Y%m%d%H%M%S")


def _epoch(value) -> float | None:
    """``gmt_create`` as seconds (the list gives milliseconds since the epoch)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 1000.0 if number > 1e11 else number


def task_state(answer: dict, key: str | None = None) -> RemoteState:
    out = answer.get("output") or {}
    raw = str(out.get("task_status") or "UNKNOWN")
    status = STATUS.get(raw, "running")
    info = {k: out[k] for k in ("actual_prompt", "orig_prompt", "submit_time", "end_time") if out.get(k)}
    if out.get("video_url"):
        info["video_url"] = out["video_url"]
    if isinstance(answer.get("usage"), dict):
        info["usage"] = answer["usage"]
        if answer["usage"].get("video_duration") is not None:
            info["video_seconds"] = answer["usage"]["video_duration"]
    state = RemoteState(status=status, raw_status=raw, info=info)
    if status == "succeeded":
        if not out.get("video_url"):
            state.status = "failed"
            state.error = ProviderError(f"{VENDOR} finished the task but gave no video URL.",
                                        f"{VENDOR} 任务已完成但没有返回视频地址。", vendor_code="no_result")
        state.urls = [out["video_url"]] if out.get("video_url") else []
    elif raw == "UNKNOWN":
        state.error = ProviderError(
            f"{VENDOR} no longer knows this task (UNKNOWN): it expired (results are kept 24 hours) or the id is "
            "wrong. Run the job again.", f"{VENDOR} 已找不到该任务（UNKNOWN）：任务已过期（结果保留 24 小时）或 ID 有误。"
            "请重新运行。", vendor_code="UNKNOWN")
    elif status == "failed":
        code = str(out.get("code") or "") or None
        message = http.scrub(out.get("message"), key) or None
        if code and code.startswith("DataInspection"):
            state.error = moderation_error(code, message)
        else:
            state.error = ProviderError(
                f"{VENDOR} could not generate the video ({code or 'FAILED'})" + (f": {message}" if message else "."),
                f"{VENDOR} 生成视频失败（{code or 'FAILED'}）" + (f"：{message}" if message else "。"),
                vendor_code=code or "FAILED")
    return state
