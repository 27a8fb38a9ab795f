"""Volcengine Ark (Seedance): ``POST/GET/DELETE {base}/contents/generations/tasks[/{id}]``, Bearer key.

Ark has no idempotency key, so a create is made safe by the create journal and a lookup
(``engines.cloud.safecreate``): the engine notes the (concrete) seed and the time before
sending; when an answer is lost, or ``start()`` runs again for the same job, it lists the
model's tasks and adopts the one with that seed and creation time instead of sending again. Seed 003's prompt flags (``--duration 5 --rs 720p``)
are parsed out of the prompt into fields (``parse_prompt_flags``).
"""

from __future__ import annotations

import secrets as _secrets
import time

import httpx

from core.errors import ProviderError, ValidationError
from engines.base import EngineRequest, RemoteState
from engines.cloud import aio, http, modeltable, safecreate, steps
from engines.cloud.ark_params import ENDPOINT_ID, ArkParams, parse_prompt_flags, resolve_fields
from engines.cloud.keyed import KeyedCloudEngine, ResultFile
from engines.cloud.modeltable import ModelSpec

__all__ = ["ArkEngine", "ArkParams", "check_against", "parse_prompt_flags", "resolve_fields", "task_state"]

VENDOR = "Volcengine Ark"
DEFAULT_BASE = "https://ark.cn-beijing.volces.com/api/v3"
MAX_IMAGE_BYTES = 10 * 2**20
LOOKUP_SLACK_S = 120.0
ROLES = {"first_frame": "first_frame", "last_frame": "last_frame", "reference": "reference_image"}


def error_of(response: httpx.Response, key: str | None = None) -> ProviderError:
    """Map Ark's ``{"error": {code, message}}`` answers, once."""
    err = http.error_body(response).get("error") or {}
    code = str(err.get("code") or "") or None
    message = http.scrub(str(err.get("message") or ""), key)
    status = response.status_code
    if code and "SensitiveContent" in code:
        return moderation_error(code, message)
    if status == 401:
        return http.http_error(VENDOR, status, code, message, retryable=False,
                               hint_en="Check ARK_API_KEY in Settings (an Ark API key, not an AK/SK pair).",
                               hint_zh="请在设置中检查 ARK_API_KEY（方舟 API Key，而非 AK/SK）。")
    if status == 403:
        return http.http_error(VENDOR, status, code, message, retryable=False,
                               hint_en="Check the account's balance and that the model is activated.",
                               hint_zh="请检查账户余额并确认已开通该模型。")
    if status == 404:
        return http.http_error(VENDOR, status, code, message, retryable=False,
                               hint_en="Check the model or endpoint id (ep-...).", hint_zh="请检查模型或接入点 ID。")
    return http.http_error(VENDOR, status, code, message, retry_after=http.retry_after_of(response))


def moderation_error(code: str, message: str = "") -> ProviderError:
    return ProviderError(f"{VENDOR} refused the content (moderation, {code}). Change the prompt or the images and "
                         "try again.", f"{VENDOR} 内容审核未通过（{code}）。请修改提示词或图片后重试。",
                         retryable=False, vendor_code=code, detail=message)


def task_kind(request: EngineRequest) -> str:
    roles = {im.role for im in request.images}
    if "reference" in roles:
        return "ref2v"
    if "last_frame" in roles:
        return "kf2v"
    return "i2v" if "first_frame" in roles else "t2v"


class ArkEngine(KeyedCloudEngine, vendor=VENDOR, keys=("ARK_API_KEY",), base_env="ARK_BASE_URL",
                default_base=DEFAULT_BASE):
    id = "ark"
    async_chain = True  # create, polls, downloads on the cloud loop (app/cloud_chain.py)
    title = "Volcengine Ark Seedance"
    tasks = ("t2v", "i2v", "kf2v", "ref2v")
    Params = ArkParams
    can_cancel = True

    # --- transport ------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs) -> steps.Io:
        """One Ark request as an ``Io`` (blocking or on the cloud loop); ``steps.json_call``'s options."""
        key = self.require_key()
        return steps.json_call(method, self.base_url() + path, vendor=VENDOR, headers=self.auth_headers(),
                               error_of=lambda r: error_of(r, key), **kwargs)

    def _send(self, method: str, path: str, *, json: dict | None = None, params=None,
              idempotent: bool = True) -> dict:
        return self._call(method, path, json=json, params=params, idempotent=idempotent).sync()

    # --- checks and body ------------------------------------------------------------
    def model_spec(self, model: str) -> ModelSpec | None:
        """The model's table entry; None for an endpoint id (ep-...) or an allowed unknown model."""
        if ENDPOINT_ID.match(model):
            return None
        return modeltable.for_settings(self.id, self.settings).spec(model, modeltable.allow_unknown(self.settings))

    def last_frame_params(self, params: dict) -> dict | None:
        """``return_last_frame: true`` for a clip another shot continues from, when the model has it and
        the project did not set it."""
        if params.get("return_last_frame") is not None:
            return None
        try:
            spec = self.model_spec(params.get("model") or self.Params.model_fields["model"].default)
        except ValidationError:
            return None
        return {"return_last_frame": True} if spec is not None and "return_last_frame" in spec.fields else None

    def check(self, request: EngineRequest) -> None:
        p: ArkParams = request.params
        text, fields = resolve_fields(request.prompt, p)
        if not text and not request.images:
            raise ValidationError("Write a prompt (the --flags alone are not a prompt).", "请填写提示词（仅有 --参数 不算）。")
        spec = self.model_spec(p.model)
        if spec is not None:
            check_against(p.model, spec, task_kind(request), request, fields)
        for im in request.images:
            size = im.path.stat().st_size if im.path is not None and im.path.exists() else 0
            if size > MAX_IMAGE_BYTES:
                raise ValidationError(f"{im.role}: the image is {size / 2**20:.1f} MB; Ark accepts 10 MB.",
                                      f"{im.role}：图片 {size / 2**20:.1f} MB，方舟上限 10 MB。")

    def create_body(self, request: EngineRequest) -> dict:
        p: ArkParams = request.params
        text, fields = resolve_fields(request.prompt, p)
        content: list[dict] = [{"type": "text", "text": text}] if text else []
        for im in request.images:
            url = http.image_payload(im, vendor=VENDOR, max_bytes=MAX_IMAGE_BYTES)
            content.append({"type": "image_url", "image_url": {"url": url}, "role": ROLES.get(im.role, "reference_image")})
        for url in p.reference_videos:
            content.append({"type": "video_url", "video_url": {"url": url}, "role": "reference_video"})
        for url in p.reference_audios:
            content.append({"type": "audio_url", "audio_url": {"url": url}, "role": "reference_audio"})
        return {"model": p.model, "content": content, **fields}

    # --- create (made safe by the journal and a lookup) ------------------------------
    def create_plan(self, request: EngineRequest) -> safecreate.CreatePlan | str:
        job = request.job_id
        note = self.journal.load(job)
        known = note.get("remote_id") or note.get("task_id")
        if known and note.get("state") in (None, "created"):
            task = self._get_or_none(known)
            if task is not None and task.get("status") in ("queued", "running", "succeeded"):
                return str(known)
            # a retry of a job whose task failed: a new create, under a new seed
            note = self.journal.save(job, remote_id=None, task_id=None, seed=None, state="not_created")
        body = self.create_body(request)
        own_seed = "seed" not in body or body["seed"] == -1
        if own_seed:  # send a concrete seed: it is recorded, and it identifies the task later
            body["seed"] = note.get("seed") if note.get("seed") is not None else _secrets.randbelow(2**32)
        self.journal.save(job, seed=body["seed"], model=body["model"])

        def task_id(answer: dict) -> str:
            if not answer.get("id"):
                raise ProviderError(f"{VENDOR} accepted the request but returned no task id.",
                                    f"{VENDOR} 接受了请求但未返回任务 ID。", vendor_code="no_id")
            return str(answer["id"])

        def send(generation: int) -> steps.Io:
            return self._call("POST", "/contents/generations/tasks", json=body, idempotent=False, then=task_id)

        return safecreate.CreatePlan(engine_id=self.id, vendor=VENDOR, send=send,
                                     request_ref=lambda g: f"seed {body['seed']}",
                                     lookup=lambda note: self.find_created(job, body, note), identifies=own_seed)

    def allow_resend(self, job_id: str) -> None:
        """"Retry anyway": the next start() sends a new create without looking for the earlier one."""
        safecreate.allow_resend(self.journal, job_id)

    def find_created(self, job: str, body: dict, note: dict) -> steps.Steps:
        """Unclaimed tasks of this model made since this job first sent its create, with its seed and
        settings (Ark's list: ``filter.model``, newest first, paged). As steps (``engines.cloud.steps``)."""
        since = float(note.get("first_sent_at") or note.get("sent_at") or time.time())
        since -= max(LOOKUP_SLACK_S, safecreate.lookup_slack_s())
        taken = safecreate.claimed_ids(self.journal, exclude_job=job)
        matches = []
        for page in (1, 2, 3):
            query = {"page_num": page, "page_size": 50, "filter.model": body["model"]}
            data = yield self._call("GET", "/contents/generations/tasks", params=query, what=f"{VENDOR} task list",
                                    retries=safecreate.lookup_attempts())
            items = data.get("items") or []
            for item in items:
                if (item.get("id") and item.get("id") not in taken and item.get("seed") == body["seed"]
                        and float(item.get("created_at") or 0) >= since
                        and all(item.get(k) in (None, body[k]) for k in ("duration", "ratio", "resolution")
                                if k in body and body[k] not in (None, -1, "adaptive"))):
                    matches.append(str(item["id"]))
            if len(items) < 50 or any(float(i.get("created_at") or 0) < since for i in items):
                break
        return matches

    # --- poll / collect / cancel ----------------------------------------------------
    def _get_or_none(self, task_id: str) -> dict | None:
        try:
            return self._send("GET", f"/contents/generations/tasks/{task_id}")
        except ProviderError as exc:
            if exc.http_status == 404:
                return None
            raise

    def poll(self, remote_id: str, request: EngineRequest | None = None) -> RemoteState:
        return self._polled(remote_id, self._get_or_none(remote_id))

    async def apoll(self, remote_id: str, request: EngineRequest | None = None) -> RemoteState:
        """``poll`` on the cloud loop (``engines.cloud.aio``)."""
        key = self.require_key()
        try:
            task = await aio.send_json("GET", f"{self.base_url()}/contents/generations/tasks/{remote_id}",
                                       vendor=VENDOR, headers=self.auth_headers(), error_of=lambda r: error_of(r, key))
        except ProviderError as exc:
            if exc.http_status != 404:
                raise
            task = None
        return self._polled(remote_id, task)

    def _polled(self, remote_id: str, task: dict | None) -> RemoteState:
        if task is None:
            err = ProviderError(f"{VENDOR} no longer knows task {remote_id} (expired or deleted). Run the job again.",
                                f"{VENDOR} 已找不到任务 {remote_id}（已过期或被删除）。请重新运行。",
                                vendor_code="not_found")
            return RemoteState("failed", "not_found", error=err)
        return task_state(task)

    CLEAR_JOURNAL_ON_COLLECT = True

    def output_meta(self, state: RemoteState, request: EngineRequest, index: int) -> dict:
        return {"model": state.info.get("model"), "last_frame_url": state.info.get("last_frame_url")}

    def extra_files(self, state: RemoteState, request: EngineRequest) -> list[ResultFile]:
        last = state.info.get("last_frame_url")  # return_last_frame: the next shot starts from it
        if not last:
            return []
        return [ResultFile(last, "image", f"{self.id}-last", 0, {"url": last, "provider": self.id, "role": "last_frame",
                                                                 "model": state.info.get("model")})]

    def cancel_remote(self, remote_id: str) -> bool:
        """Ark cancels queued tasks only (DELETE on a finished one would delete its record)."""
        task = self._get_or_none(remote_id)
        if task is None or task.get("status") != "queued":
            return False
        try:
            response = http.get_client().delete(f"{self.base_url()}/contents/generations/tasks/{remote_id}",
                                                headers=self.auth_headers(), timeout=http.timeouts())
        except httpx.HTTPError as exc:
            raise http.transport_error(VENDOR, exc) from exc
        return response.status_code < 300

    def poll_delay(self, polls: int) -> float:
        """About 5 s, growing to 10 s (seed 003's advice); ``XIANYING_POLL_SCALE`` scales it."""
        return min(5.0 * 1.2 ** polls, 10.0) * http.poll_scale()


def task_state(task: dict) -> RemoteState:
    raw = str(task.get("status") or "")
    info: dict = {"provider": "ark"}
    for key in ("model", "seed", "resolution", "ratio", "duration", "framespersecond", "revised_prompt"):
        if task.get(key) not in (None, ""):
            info[key] = task[key]
    if isinstance(task.get("usage"), dict):
        info["usage"] = task["usage"]
        info["usage_tokens"] = task["usage"].get("total_tokens") or task["usage"].get("completion_tokens")
    content = task.get("content") or {}
    if content.get("last_frame_url"):
        info["last_frame_url"] = content["last_frame_url"]
    if raw in ("queued", "running"):
        return RemoteState(raw, raw, info=info)
    if raw == "succeeded":
        url = content.get("video_url")
        if not url:
            return RemoteState("failed", raw, info=info, error=ProviderError(
                f"{VENDOR} finished the task without a video URL.", f"{VENDOR} 任务已完成但没有视频链接。",
                vendor_code="no_output"))
        info["video_urls"] = [url]
        return RemoteState("succeeded", raw, progress=100.0, urls=[url], info=info)
    if raw == "cancelled":
        return RemoteState("cancelled", raw, info=info)
    err = task.get("error") or {}
    code, message = str(err.get("code") or raw or "unknown"), str(err.get("message") or "")
    info["error"] = {"code": code, "message": message}
    if raw == "expired":
        error = ProviderError(f"{VENDOR} let the task expire before it ran ({code}). Run the job again, perhaps at a "
                              "quieter time.", f"{VENDOR} 任务在执行前已过期（{code}）。请重新运行。",
                              vendor_code="expired")
    elif "SensitiveContent" in code:
        error = moderation_error(code, message)
    else:
        error = ProviderError(f"{VENDOR} could not make the video ({code}: {message}).",
                              f"{VENDOR} 生成视频失败（{code}：{message}）。", vendor_code=code)
    return RemoteState("failed", raw or "unknown", error=error, info=info)


def check_against(model: str, spec: ModelSpec, kind: str, request: EngineRequest, fields: dict) -> None:
    """The table's rules for one Seedance model (``engines/cloud/models/ark.yaml``)."""
    p: ArkParams = request.params

    def bad(en: str, zh: str) -> ValidationError:
        return ValidationError(f"{model}: {en}", f"{model}：{zh}")

    if kind not in spec.tasks:
        raise bad(f"cannot do {kind}; it does {', '.join(spec.tasks)}.", f"不支持 {kind}；支持：{', '.join(spec.tasks)}。")
    refs = sum(1 for im in request.images if im.role == "reference")
    for count, limit, en, zh in ((refs, spec.max_refs, "reference images", "张参考图"),
                                 (len(p.reference_videos), spec.max_ref_videos, "reference videos", "段参考视频"),
                                 (len(p.reference_audios), spec.max_ref_audios, "reference audio clips", "段参考音频")):
        if count > limit:
            raise bad(f"takes at most {limit} {en}.", f"最多支持 {limit} {zh}。")
    asked = set(fields) | {name for name in ("reference_videos", "reference_audios") if getattr(p, name)}
    for name in sorted(asked - set(spec.fields) - {"seed"}):
        raise bad(f"has no '{name}' setting; leave it empty.", f"不支持参数“{name}”，请留空。")
    duration = fields.get("duration")
    if duration is not None and spec.durations:
        if duration == -1 and not spec.duration_auto:
            raise bad("cannot choose its own duration (-1); give seconds.", "不支持自动时长（-1），请填写秒数。")
        if duration != -1 and duration not in spec.durations:
            lo, hi = min(spec.durations), max(spec.durations)
            auto = " or -1 (the model chooses)" if spec.duration_auto else ""
            raise bad(f"duration {duration} is not allowed; use {lo}-{hi} seconds{auto}.",
                      f"时长 {duration} 不支持；可选 {lo}-{hi} 秒。")
    if fields.get("resolution") and spec.resolutions and fields["resolution"] not in spec.resolutions:
        raise bad(f"resolution {fields['resolution']} is not allowed; use {', '.join(spec.resolutions)}.",
                  f"不支持分辨率 {fields['resolution']}；可选：{', '.join(spec.resolutions)}。")
    if fields.get("ratio") and spec.ratios and fields["ratio"] not in spec.ratios:
        raise bad(f"ratio {fields['ratio']} is not allowed; use {', '.join(spec.ratios)}.",
                  f"不支持宽高比 {fields['ratio']}；可选：{', '.join(spec.ratios)}。")
