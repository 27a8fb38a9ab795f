"""Zhipu (BigModel) video: CogVideoX and Vidu models behind one asynchronous API.

Create ``POST {base}/videos/generations``; query ``GET {base}/async-result/{id}`` (PROCESSING,
SUCCESS, FAIL); no cancel endpoint, no task list. ``request_id`` is derived from the job id and a
generation counter kept in the create journal, but Zhipu does not promise to refuse a repeated
one and cannot look a task up by it: a create whose answer was lost (timeout, cut answer, 5xx)
is never sent again (``engines.cloud.safecreate``). The job fails saying the task may exist and
showing the request_id; only an explicit "Retry anyway" sends a new create under a new key.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from core.errors import ProviderError, ValidationError
from engines.base import EngineRequest, Params, RemoteState
from engines.cloud import aio, http, modeltable, safecreate, steps
from engines.cloud.keyed import KeyedCloudEngine
from engines.cloud.modeltable import ModelSpec

VENDOR = "Zhipu"
KEY = "ZHIPUAI_API_KEY"
DEFAULT_BASE = "https://open.bigmodel.cn/api/paas/v4"
MAX_PROMPT = 512
MAX_IMAGE_BYTES = 5 * 2**20
STATUS = {"PROCESSING": "running", "SUCCESS": "succeeded", "FAIL": "failed"}


NEEDS = {"t2v": ("text only", "仅文本"), "i2v": ("one first-frame image", "一张首帧图片"),
         "kf2v": ("a first and a last frame image", "首帧和尾帧两张图片"),
         "ref2v": ("1 to 3 reference images", "1 到 3 张参考图")}


class ZhipuParams(Params):
    model: str = Field("cogvideox-3", pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{1,63}$",
                       description="CogVideoX (text or first frame) or Vidu model (-text, -image, -start-end, "
                       "-reference); engines/cloud/models/zhipu.yaml",
                       json_schema_extra={"choices": modeltable.model_choices("zhipu")})
    quality: Literal["speed", "quality"] | None = Field(None, description="CogVideoX: speed or quality first")
    size: str | None = Field(None, pattern=r"^\d{3,4}x\d{3,4}$", description="Frame size 'WxH' (e.g. 1920x1080)")
    fps: Literal[30, 60] | None = Field(None, description="CogVideoX frames per second")
    duration: int | None = Field(None, ge=4, le=10, description="Seconds (CogVideoX 5 or 10; viduq1 5; vidu2 4)")
    style: Literal["general", "anime"] | None = Field(None, description="viduq1-text style")
    aspect_ratio: Literal["16:9", "9:16", "1:1"] | None = Field(
        None, description="viduq1-text and vidu2-reference aspect ratio")
    movement_amplitude: Literal["auto", "small", "medium", "large"] | None = Field(
        None, description="Vidu motion amplitude")
    with_audio: bool | None = Field(None, description="Also generate sound")


def _invalid(en: str, zh: str) -> ValidationError:
    return ValidationError(en, zh)


def moderation_error(code: str | None, message: str | None) -> ProviderError:
    return ProviderError(
        f"{VENDOR}'s content check refused this prompt or image ({code}). Change the prompt or the image and "
        "try again." + (f" ({message})" if message else ""),
        f"{VENDOR} 内容安全审核未通过（{code}）。请修改提示词或图片后重试。",
        retryable=False, vendor_code=code or "1301")


def error_of(response, key: str | None = None) -> ProviderError:
    """Zhipu's ``{"error": {"code", "message"}}`` → ProviderError."""
    err = http.error_body(response).get("error") or {}
    err = err if isinstance(err, dict) else {}
    code = str(err.get("code") or "") or None
    message = http.scrub(err.get("message"), key) or None
    status = response.status_code
    if code == "1301":
        return moderation_error(code, message)
    hint_en = hint_zh = ""
    retryable = None
    if status == 401 or (code or "").startswith("100"):
        hint_en = f"Check {KEY} in Settings → Provider keys (or the environment variable of that name)."
        hint_zh = f"请在“设置 → 服务商密钥”或环境变量中检查 {KEY}。"
        retryable = False
    elif code == "1113":
        hint_en, hint_zh, retryable = "The account is overdue; top it up on open.bigmodel.cn.", \
            "账户已欠费，请在智谱开放平台充值。", False
    elif code in ("1211", "1231"):
        retryable = False
    return http.http_error(VENDOR, status, code, message, retryable=retryable, hint_en=hint_en, hint_zh=hint_zh,
                           retry_after=http.retry_after_of(response))


class ZhipuEngine(KeyedCloudEngine, vendor=VENDOR, keys=(KEY,), base_env="ZHIPUAI_BASE_URL",
                  default_base=DEFAULT_BASE, content_type="application/json"):
    id = "zhipu"
    async_chain = True  # create, polls, downloads on the cloud loop (app/cloud_chain.py)
    title = "Zhipu CogVideoX / Vidu (BigModel)"
    tasks = ("t2v", "i2v", "kf2v", "ref2v")
    Params = ZhipuParams
    can_cancel = False

    # --- validation -----------------------------------------------------------------
    @staticmethod
    def task_of(request: EngineRequest) -> str:
        refs = [im for im in request.images if im.role == "reference"]
        if refs:
            return "ref2v"
        first, last = request.image("first_frame"), request.image("last_frame")
        return "kf2v" if first and last else "i2v" if first else "t2v"

    def model_spec(self, model: str) -> ModelSpec | None:
        return modeltable.for_settings(self.id, self.settings).spec(model, modeltable.allow_unknown(self.settings))

    def check(self, request: EngineRequest) -> None:
        p: ZhipuParams = request.params
        spec = self.model_spec(p.model)
        task = self.task_of(request)
        if spec is not None and task not in spec.tasks:
            wanted = " or ".join(NEEDS[t][0] for t in spec.tasks)
            wanted_zh = "或".join(NEEDS[t][1] for t in spec.tasks)
            raise _invalid(f"{p.model} takes {wanted}; this request has {NEEDS[task][0]}.",
                           f"{p.model} 需要{wanted_zh}；当前请求为{NEEDS[task][1]}。")
        refs = [im for im in request.images if im.role == "reference"]
        limit = spec.max_refs if spec is not None else 3
        if len(refs) > limit:
            raise _invalid(f"{p.model} takes at most {limit} reference images.", f"{p.model} 最多 {limit} 张参考图。")
        if task == "t2v" and not request.prompt.strip():
            raise _invalid("Write a prompt first.", "请先填写提示词。")
        if len(request.prompt) > MAX_PROMPT:
            raise _invalid(f"The prompt is {len(request.prompt)} characters; {VENDOR} accepts at most {MAX_PROMPT}.",
                           f"提示词 {len(request.prompt)} 字，{VENDOR} 最多 {MAX_PROMPT} 字。")
        if request.negative_prompt.strip():
            raise _invalid(f"{VENDOR} models take no negative prompt; leave it empty.",
                           f"{VENDOR} 模型不支持反向提示词，请留空。")
        for image in request.images:
            http.check_image_size(image, vendor=VENDOR, max_bytes=MAX_IMAGE_BYTES)
        if spec is None:  # allow_unknown_models: only the checks above
            return
        for name in ("quality", "size", "fps", "duration", "style", "aspect_ratio", "movement_amplitude",
                     "with_audio"):
            if getattr(p, name) is not None and name not in spec.fields:
                raise _invalid(f"{p.model} has no '{name}' setting; leave it empty.",
                               f"{p.model} 不支持参数“{name}”，请留空。")
        if p.aspect_ratio and spec.ratios and p.aspect_ratio not in spec.ratios:
            raise _invalid(f"{p.model} does not take aspect ratio {p.aspect_ratio}; use {', '.join(spec.ratios)}.",
                           f"{p.model} 不支持宽高比 {p.aspect_ratio}。")
        if p.size and spec.sizes and p.size not in spec.sizes:
            extra = " (use aspect_ratio for portrait or square)" if "aspect_ratio" in spec.fields else ""
            raise _invalid(f"{p.model} does not make {p.size}; sizes: {', '.join(spec.sizes)}{extra}.",
                           f"{p.model} 不支持尺寸 {p.size}；可选：{', '.join(spec.sizes)}。")
        if p.duration is not None and spec.durations and p.duration not in spec.durations:
            allowed = ", ".join(str(d) for d in spec.durations)
            raise _invalid(f"{p.model} makes videos of {allowed} s, not {p.duration} s.",
                           f"{p.model} 支持的时长为 {allowed} 秒，不支持 {p.duration} 秒。")

    # --- create ---------------------------------------------------------------------
    def shape_seed_request(self, model: str, params: dict) -> dict:
        """Vidu models make exactly one size; seed scripts still send ``size`` (often portrait).
        A size the model cannot make becomes the model's, and a portrait or square request
        becomes ``aspect_ratio`` where the model has one."""
        spec = modeltable.for_settings(self.id, self.settings).models.get(model)
        if not isinstance(params.get("size"), str) or spec is None or params["size"] in spec.sizes \
                or len(spec.sizes) != 1:
            return {}
        asked, changed = params["size"], {}
        w, _, h = asked.lower().partition("x")
        if "aspect_ratio" in spec.fields and not params.get("aspect_ratio") and w.isdigit() and h.isdigit():
            ratio = "9:16" if int(h) > int(w) else "1:1" if w == h else None
            if ratio:
                params["aspect_ratio"] = changed["aspect_ratio"] = ratio
        params["size"] = spec.sizes[0]
        changed["size"] = f"{asked} -> {spec.sizes[0]} ({model} makes only this size)"
        return changed

    def create_body(self, request: EngineRequest, request_id: str) -> dict:
        p: ZhipuParams = request.params
        body: dict = {"model": p.model, "request_id": request_id}
        if request.prompt:
            body["prompt"] = request.prompt
        images = [http.image_payload(im, vendor=VENDOR, max_bytes=MAX_IMAGE_BYTES) for im in
                  sorted(request.images, key=lambda im: {"first_frame": 0, "last_frame": 1}.get(im.role, 2))]
        task = self.task_of(request)
        if task == "i2v":
            body["image_url"] = images[0]
        elif task in ("kf2v", "ref2v"):
            body["image_url"] = images
        for name in ("quality", "size", "fps", "duration", "style", "aspect_ratio", "movement_amplitude",
                     "with_audio"):
            value = getattr(p, name)
            if value is not None:
                body[name] = value
        return body

    def create_plan(self, request: EngineRequest) -> safecreate.CreatePlan | str:
        note = self.journal.load(request.job_id) or {}
        if note.get("state") == "created" and note.get("remote_id"):
            return str(note["remote_id"])  # answered before a crash, never committed: follow it
        headers = self.auth_headers()
        key = self.key()

        def request_id(generation: int) -> str:
            return f"xianying-{request.job_id}-{generation}"

        def task_id(answer: dict) -> str:
            if not answer.get("id"):
                raise ProviderError(f"{VENDOR} accepted the request but returned no task id.",
                                    f"{VENDOR} 接受了请求但未返回任务 ID。", vendor_code="no_id")
            return str(answer["id"])

        def send(generation: int) -> steps.Io:
            body = self.create_body(request, request_id(generation))
            return steps.json_call("POST", f"{self.base_url()}/videos/generations", vendor=VENDOR, headers=headers,
                                   json=body, error_of=lambda r: error_of(r, key), idempotent=False, then=task_id)

        # Zhipu has no way to find a task by request_id and does not promise to refuse a repeated one:
        # a create whose answer was lost is never sent again (safecreate.RECOVERY["zhipu"] == "none").
        return safecreate.CreatePlan(engine_id=self.id, vendor=VENDOR, send=send, request_ref=request_id)

    def allow_resend(self, job_id: str) -> None:
        """"Retry anyway": the next start() sends a new create under a new request_id."""
        safecreate.allow_resend(self.journal, job_id)

    # --- poll / collect -------------------------------------------------------------
    def _poll_errors(self, remote_id: str, key: str | None):
        def errors(response) -> ProviderError:
            if response.status_code == 404:
                return ProviderError(f"{VENDOR} no longer knows this task ({remote_id}); run the job again.",
                                     f"{VENDOR} 已找不到该任务（{remote_id}），请重新运行。", vendor_code="404",
                                     http_status=404)
            return error_of(response, key)

        return errors

    def poll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        key = self.key()
        answer = http.with_retries(lambda: http.send_json(
            "GET", f"{self.base_url()}/async-result/{remote_id}", vendor=VENDOR, headers=self.auth_headers(),
            error_of=self._poll_errors(remote_id, key)), what=f"{VENDOR} query")
        return self.after_poll(task_state(answer, key), request)

    async def apoll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        """``poll`` on the cloud loop (``engines.cloud.aio``)."""
        key = self.key()
        answer = await aio.with_retries(lambda: aio.send_json(
            "GET", f"{self.base_url()}/async-result/{remote_id}", vendor=VENDOR, headers=self.auth_headers(),
            error_of=self._poll_errors(remote_id, key)), what=f"{VENDOR} query")
        return await self.aafter_poll(task_state(answer, key), request)

    def task_ended(self, job_id: str) -> None:
        """Keep the generation: a Retry sends a new request_id."""
        self.journal.save(job_id, state="finished", remote_id=None)

    def output_meta(self, state: RemoteState, request: EngineRequest, index: int) -> dict:
        covers = state.info.get("cover_image_urls") or []
        return {"model": request.params.model, "cover_image_url": covers[index] if index < len(covers) else None}

    def poll_delay(self, polls: int) -> float:
        """No official interval; the SDK's example waits 5 s (``XIANYING_ZHIPU_POLL_INTERVAL``)."""
        interval = float(os.environ.get("XIANYING_ZHIPU_POLL_INTERVAL") or 5.0)
        return (min(2.0 + polls, interval)) * http.poll_scale()


def task_state(answer: dict, key: str | None = None) -> RemoteState:
    raw = str(answer.get("task_status") or "")
    status = STATUS.get(raw, "running")
    results = [r for r in (answer.get("video_result") or []) if isinstance(r, dict)]
    info: dict = {}
    if answer.get("model"):
        info["model"] = answer["model"]
    if results:
        info["video_urls"] = [r.get("url") for r in results if r.get("url")]
        covers = [r.get("cover_image_url") for r in results if r.get("cover_image_url")]
        if covers:
            info["cover_image_urls"] = covers
    if isinstance(answer.get("usage"), dict):
        info["usage"] = answer["usage"]
    state = RemoteState(status=status, raw_status=raw or "?", info=info)
    if status == "succeeded":
        state.urls = list(info.get("video_urls") or [])
        if not state.urls:
            state.status = "failed"
            state.error = ProviderError(f"{VENDOR} finished the task but gave no video URL.",
                                        f"{VENDOR} 任务已完成但没有返回视频地址。", vendor_code="no_result")
    elif status == "failed":
        err = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        code = str(err.get("code") or "") or None
        message = http.scrub(err.get("message") or answer.get("message"), key) or None
        if code == "1301":
            state.error = moderation_error(code, message)
        else:
            state.error = ProviderError(
                f"{VENDOR} could not generate the video ({code or 'FAIL'})" + (f": {message}" if message else "."),
                f"{VENDOR} 生成视频失败（{code or 'FAIL'}）" + (f"：{message}" if message else "。"),
                vendor_code=code or "FAIL")
    return state
