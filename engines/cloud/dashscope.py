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
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from pydantic import Field

from core.errors import ProviderError, ValidationError
from engines.base import EngineRequest, Params, RemoteState
from engines.cloud import http, safecreate
from engines.cloud.keyed import KeyedCloudEngine

VENDOR = "DashScope"
KEY = "DASHSCOPE_API_KEY"
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


@dataclass(frozen=True)
class WanModel:
    task: str  # t2v | i2v | kf2v
    resolutions: tuple[str, ...]
    durations: tuple[int, ...] = (5,)


MODELS = {
    "wanx2.1-t2v-turbo": WanModel("t2v", ("480P", "720P")),
    "wanx2.1-t2v-plus": WanModel("t2v", ("720P",)),
    "wanx2.1-i2v-turbo": WanModel("i2v", ("480P", "720P"), (3, 4, 5)),
    "wanx2.1-i2v-plus": WanModel("i2v", ("720P",)),
    "wanx2.1-kf2v-plus": WanModel("kf2v", ("720P",)),
    "wan2.2-t2v-plus": WanModel("t2v", ("480P", "1080P")),
    "wan2.2-i2v-plus": WanModel("i2v", ("480P", "1080P")),
    "wan2.2-i2v-flash": WanModel("i2v", ("480P", "720P", "1080P")),
    "wan2.2-kf2v-flash": WanModel("kf2v", ("480P", "720P", "1080P")),
    "wan2.5-t2v-preview": WanModel("t2v", ("480P", "720P", "1080P"), (5, 10)),
    "wan2.5-i2v-preview": WanModel("i2v", ("480P", "720P", "1080P"), (5, 10)),
}
ModelId = Literal[
    "wanx2.1-t2v-turbo", "wanx2.1-t2v-plus", "wanx2.1-i2v-turbo", "wanx2.1-i2v-plus", "wanx2.1-kf2v-plus",
    "wan2.2-t2v-plus", "wan2.2-i2v-plus", "wan2.2-i2v-flash", "wan2.2-kf2v-flash",
    "wan2.5-t2v-preview", "wan2.5-i2v-preview",
]
TASK_WORDS = {"t2v": ("text-to-video", "文生视频"), "i2v": ("image-to-video", "图生视频"),
              "kf2v": ("first-and-last-frame", "首尾帧生视频")}
STATUS = {"PENDING": "queued", "SUSPENDED": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded",
          "FAILED": "failed", "CANCELED": "cancelled", "UNKNOWN": "failed"}


class DashScopeParams(Params):
    model: ModelId = Field("wanx2.1-t2v-turbo", description="Wan model; t2v models take text only, i2v a first "
                           "frame, kf2v a first and a last frame")
    size: str | None = Field(None, pattern=r"^\d{3,4}\*\d{3,4}$",
                             description="Text-to-video frame size 'W*H' (e.g. 1280*720); empty for the default")
    resolution: Literal["480P", "720P", "1080P"] | None = Field(
        None, description="Resolution tier; image models use it instead of size")
    duration: int | None = Field(None, ge=3, le=10, description="Seconds (most models: 5; wan2.5: 5 or 10)")
    seed: int | None = Field(None, ge=0, le=2147483647, description="Seed; empty for a random one")
    prompt_extend: bool = Field(True, description="Let DashScope rewrite the prompt for better results")
    watermark: bool = Field(False, description="Add the 'AI generated' watermark")


def _invalid(en: str, zh: str) -> ValidationError:
    return ValidationError(en, zh)


def moderation_error(code: str | None, message: str | None) -> ProviderError:
    return ProviderError(
        f"{VENDOR}'s content check refused this prompt or image ({code}). Change the prompt or the image and "
        "try again." + (f" ({message})" if message else ""),
        f"{VENDOR} 内容安全审核未通过（{code}）。请修改提示词或图片后重试。",
        retryable=False, vendor_code=code or "DataInspectionFailed")


def error_of(response, key: str | None = None) -> ProviderError:
    """DashScope's error body ``{"request_id", "code", "message"}`` → ProviderError."""
    body = http.error_body(response)
    code = str(body.get("code") or "") or None
    message = http.scrub(body.get("message"), key) or None
    status = response.status_code
    if code and code.startswith("DataInspection"):
        return moderation_error(code, message)
    hint_en = hint_zh = ""
    retryable = None
    if status == 401 or code == "InvalidApiKey":
        hint_en = f"Check {KEY} in Settings → Provider keys (or the environment variable of that name)."
        hint_zh = f"请在“设置 → 服务商密钥”或环境变量中检查 {KEY}。"
        retryable = False
    elif code == "Arrearage":
        hint_en, hint_zh, retryable = "The account is overdue; top it up in the DashScope console.", \
            "账户已欠费，请在百炼控制台充值。", False
    elif status == 403:
        hint_en, hint_zh = "This key may not have access to the model; enable it in the console.", \
            "该密钥可能无权使用此模型，请在控制台开通。"
    elif code and code.startswith("Throttling"):
        retryable = True
    return http.http_error(VENDOR, status, code, message, retryable=retryable, hint_en=hint_en, hint_zh=hint_zh,
                           retry_after=http.retry_after_of(response))


class DashScopeEngine(KeyedCloudEngine, vendor=VENDOR, keys=(KEY,), base_env="DASHSCOPE_HTTP_BASE_URL",
                      default_base=DEFAULT_BASE, content_type="application/json"):
    id = "dashscope"
    title = "DashScope Wan (Alibaba Model Studio)"
    tasks = ("t2v", "i2v", "kf2v")
    Params = DashScopeParams
    can_cancel = True

    def _headers(self, create: bool = False) -> dict:
        return self.auth_headers({"X-DashScope-Async": "enable"} if create else None)

    # --- validation -----------------------------------------------------------------
    def check(self, request: EngineRequest) -> None:
        p: DashScopeParams = request.params
        spec = MODELS[p.model]
        first, last = request.image("first_frame"), request.image("last_frame")
        if request.image("reference"):
            raise _invalid(f"{p.model} does not take reference images.", f"{p.model} 不支持参考图。")
        en, zh = TASK_WORDS[spec.task]
        if spec.task == "t2v" and (first or last):
            raise _invalid(f"{p.model} is a {en} model and takes no image; choose an i2v or kf2v model.",
                           f"{p.model} 是{zh}模型，不接受图片；请选择 i2v 或 kf2v 模型。")
        if spec.task == "i2v" and (not first or last):
            raise _invalid(f"{p.model} is an {en} model: give exactly one first-frame image "
                           "(for first and last frames choose a kf2v model).",
                           f"{p.model} 是{zh}模型：需要且仅需要一张首帧图片（首尾帧请选 kf2v 模型）。")
        if spec.task == "kf2v" and not (first and last):
            raise _invalid(f"{p.model} needs a first frame and a last frame image.",
                           f"{p.model} 需要首帧和尾帧两张图片。")
        if spec.task == "t2v" and not request.prompt.strip():
            raise _invalid("Write a prompt first.", "请先填写提示词。")
        if len(request.prompt) > MAX_PROMPT:
            raise _invalid(f"The prompt is {len(request.prompt)} characters; {VENDOR} accepts at most {MAX_PROMPT}.",
                           f"提示词 {len(request.prompt)} 字，{VENDOR} 最多 {MAX_PROMPT} 字。")
        if len(request.negative_prompt) > MAX_NEGATIVE:
            raise _invalid(f"The negative prompt is {len(request.negative_prompt)} characters; at most "
                           f"{MAX_NEGATIVE}.", f"反向提示词 {len(request.negative_prompt)} 字，最多 {MAX_NEGATIVE} 字。")
        tiers = ", ".join(spec.resolutions)
        if p.resolution and p.resolution not in spec.resolutions:
            raise _invalid(f"{p.model} supports resolution {tiers}, not {p.resolution}.",
                           f"{p.model} 支持的分辨率为 {tiers}，不支持 {p.resolution}。")
        if p.size:
            if spec.task != "t2v":
                raise _invalid(f"{p.model} takes a resolution ({tiers}), not a size.",
                               f"{p.model} 使用分辨率（{tiers}）而不是尺寸。")
            allowed = [s for r in spec.resolutions for s in SIZES[r] if not p.resolution or r == p.resolution]
            if p.size not in allowed:
                raise _invalid(f"{p.model} does not make {p.size}; sizes: {', '.join(allowed)}.",
                               f"{p.model} 不支持尺寸 {p.size}；可选：{', '.join(allowed)}。")
        if p.duration is not None and p.duration not in spec.durations:
            allowed_d = ", ".join(str(d) for d in spec.durations)
            raise _invalid(f"{p.model} makes videos of {allowed_d} s, not {p.duration} s.",
                           f"{p.model} 支持的时长为 {allowed_d} 秒，不支持 {p.duration} 秒。")
        for image in (first, last):
            if image is not None:
                http.check_image_size(image, vendor=VENDOR, max_bytes=MAX_IMAGE_BYTES)

    # --- create ---------------------------------------------------------------------
    def shape_seed_request(self, model: str, params: dict) -> dict:
        """Seed scripts write sizes as ``1280x720``; DashScope's are ``1280*720``."""
        if isinstance(params.get("size"), str) and "x" in params["size"].lower():
            params["size"] = params["size"].replace("x", "*").replace("X", "*")
        return {}

    def create_body(self, request: EngineRequest) -> tuple[str, dict]:
        p: DashScopeParams = request.params
        spec = MODELS[p.model]
        inputs: dict = {"prompt": request.prompt}
        if request.negative_prompt:
            inputs["negative_prompt"] = request.negative_prompt
        params: dict = {"prompt_extend": p.prompt_extend, "watermark": p.watermark}
        if spec.task == "t2v":
            size = p.size or (SIZES[p.resolution][0] if p.resolution else None)
            if size:
                params["size"] = size
            path = "services/aigc/video-generation/video-synthesis"
        else:
            image = lambda role: http.image_payload(request.image(role), vendor=VENDOR,  # noqa: E731
                                                    max_bytes=MAX_IMAGE_BYTES)
            if spec.task == "i2v":
                inputs["img_url"] = image("first_frame")
                path = "services/aigc/video-generation/video-synthesis"
            else:
                inputs["first_frame_url"], inputs["last_frame_url"] = image("first_frame"), image("last_frame")
                path = "services/aigc/image2video/video-synthesis"
            if p.resolution:
                params["resolution"] = p.resolution
        if p.duration is not None:
            params["duration"] = p.duration
        if p.seed is not None:
            params["seed"] = p.seed
        return f"{self.base_url()}/{path}", {"model": p.model, "input": inputs, "parameters": params}

    def start(self, request: EngineRequest) -> str:
        note = self.journal.load(request.job_id) or {}
        if note.get("state") == "created" and note.get("remote_id"):
            return str(note["remote_id"])  # answered before a crash, never committed: follow it
        url, body = self.create_body(request)
        headers = self._headers(create=True)
        key = self.key()
        refs: dict[int, str] = {}

        def send(generation: int) -> str:
            answer = http.send_json("POST", url, vendor=VENDOR, headers=headers, json=body,
                                    error_of=lambda r: _remember_request_id(r, refs, generation, key),
                                    idempotent=False)
            task_id = (answer.get("output") or {}).get("task_id")
            if not task_id:
                raise ProviderError(f"{VENDOR} accepted the request but returned no task id.",
                                    f"{VENDOR} 接受了请求但未返回任务 ID。", vendor_code="no_task_id")
            return str(task_id)

        return safecreate.run_create(self.journal, request.job_id, safecreate.CreatePlan(
            engine_id=self.id, vendor=VENDOR, send=send, request_ref=lambda g: refs.get(g),
            lookup=lambda note: self.find_created(request, note)))

    def allow_resend(self, job_id: str) -> None:
        """"Retry anyway": the next start() sends a new create without looking for the earlier one."""
        safecreate.allow_resend(self.journal, job_id)

    def find_created(self, request: EngineRequest, note: dict) -> list[tuple[str, float | None]]:
        """Unclaimed tasks of this model created in this job's send window whose prompt (when the task
        shows it) is this job's, with their creation time: ``GET {base}/tasks`` (the SDK's ``list``),
        then each task's query."""
        slack = safecreate.lookup_slack_s()
        since = float(note.get("first_sent_at") or note.get("sent_at") or time.time()) - slack
        until = time.time() + slack
        windows = safecreate.send_windows(note) or [(since, until)]
        taken = safecreate.claimed_ids(self.journal, exclude_job=request.job_id)
        key = self.key()
        found: list[tuple[str, float | None]] = []
        for page in range(1, LOOKUP_PAGES + 1):
            query = {"model_name": request.params.model, "start_time": _bj_time(since),
                     "end_time": _bj_time(until), "page_no": page, "page_size": LOOKUP_PAGE_SIZE}
            data = http.with_retries(lambda q=query: http.send_json(
                "GET", f"{self.base_url()}/tasks", vendor=VENDOR, headers=self._headers(), params=q,
                error_of=lambda r: error_of(r, key)), what=f"{VENDOR} task list",
                attempts=safecreate.lookup_attempts())
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
                task = http.with_retries(lambda tid=task_id: http.send_json(
                    "GET", f"{self.base_url()}/tasks/{tid}", vendor=VENDOR, headers=self._headers(),
                    error_of=lambda r: error_of(r, key)), what=f"{VENDOR} query",
                    attempts=safecreate.lookup_attempts())
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
        state = task_state(answer, key)
        if state.status not in ("queued", "running"):
            self.journal.clear(request.job_id)
        return state

    def collect(self, state: RemoteState, request: EngineRequest) -> list:
        outputs = []
        for index, url in enumerate(state.urls):
            path = http.download_video(url, request.workdir, self.id, index)
            meta = {"url": url, "provider": self.id, "model": request.params.model,
                    "actual_prompt": state.info.get("actual_prompt")}
            outputs.append(http.video_output(path, meta={k: v for k, v in meta.items() if v is not None}))
        return outputs

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


def _remember_request_id(response, refs: dict[int, str], generation: int, key: str | None) -> ProviderError:
    """Map an error answer, keeping DashScope's request_id so a person can quote it to support."""
    rid = http.error_body(response).get("request_id")
    if rid:
        refs[generation] = str(rid)
    return error_of(response, key)


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
