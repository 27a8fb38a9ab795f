"""Tencent Cloud VOD AIGC video: CreateAigcVideoTask / DescribeTaskDetail, TC3-HMAC-SHA256 signed.

Every call is ``POST <endpoint>/`` with a JSON body and ``X-TC-Action``; errors come back as
HTTP 200 with ``Response.Error``. ``SessionId`` (derived from the job id) makes a create
idempotent for three days: a repeated one is refused with ``InvalidParameterValue.SessionId``,
and the engine then finds the task it already created (``DescribeTasks``) instead of failing
or creating a second one. There is no cancel API.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from core.errors import ProviderError, ValidationError
from engines.base import EngineRequest, Params, RemoteState
from engines.cloud import aio, http, modeltable, safecreate, steps
from engines.cloud.keyed import KeyedCloudEngine
from engines.cloud.modeltable import ModelSpec
from engines.cloud.tencent_sign import tc3_authorization

VENDOR = "Tencent Cloud VOD"
API_VERSION = "2018-07-17"
DEFAULT_ENDPOINT = "https://vod.tencentcloudapi.com/"
MAX_PROMPT = 1000
MAX_IMAGE_BYTES = 10 * 2**20  # per image
MAX_BASE64_TOTAL = 7 * 2**20  # all inline images together (the API's 10 MB packet limit)
LOOKUP_PAGES = 10

MAX_FILES = 3  # FileInfos: at most three images
USAGE = {"first_frame": "FirstFrame", "last_frame": "LastFrame", "reference": "Reference"}
RETRYABLE = ("RequestLimitExceeded", "LimitExceeded", "InternalError", "ResourceUnavailable",
             "ResourceInsufficient", "FailedOperation.TaskPile")
MODERATION = ("InvalidParameter.ViolationContent", "InvalidParameter.VoilationContent", "ContentModerationFailed")


class TencentVodParams(Params):
    model: str = Field("Hailuo", pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$",
                       description="ModelName: the video model Tencent VOD runs (engines/cloud/models/tencent-vod.yaml)",
                       json_schema_extra={"choices": modeltable.model_choices("tencent-vod")})
    model_version: str | None = Field(None, max_length=32, description="ModelVersion; empty for the model's default")
    duration: int | None = Field(None, ge=1, le=15, description="Seconds of video (allowed values depend on the model)")
    resolution: str | None = Field(None, max_length=8, description="720P / 768P / 1080P, by model")
    aspect_ratio: str | None = Field(None, max_length=8, description="16:9, 9:16, 1:1... (text-to-video)")
    enhance_prompt: bool | None = Field(None, description="Let Tencent rewrite the prompt (EnhancePrompt)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed; empty for a random one")
    audio_generation: bool | None = Field(None, description="Make sound with the video (OutputConfig.AudioGeneration)")
    sub_app_id: int | None = Field(None, ge=1, description="VOD SubAppId; empty to use TENCENTCLOUD_VOD_SUBAPPID")


# --- errors -------------------------------------------------------------------------
def moderation_error(vendor_code: str, message: str = "") -> ProviderError:
    return ProviderError(
        f"{VENDOR} refused the content (moderation, {vendor_code}). Change the prompt or the images and "
        "try again.", f"{VENDOR} 内容审核未通过（{vendor_code}）。请修改提示词或图片后重试。",
        retryable=False, vendor_code=vendor_code, detail=message)


def api_error(code: str, message: str, secrets: tuple = ()) -> ProviderError:
    """Map ``Response.Error`` (HTTP 200) to a ProviderError, once."""
    message = http.scrub(message, *secrets)
    if code.startswith(MODERATION):
        return moderation_error(code, message)
    if code.startswith(("AuthFailure", "UnauthorizedOperation")):
        hint_en = ("Check TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY in Settings"
                   + (" and this computer's clock" if "SignatureExpire" in code else "") + ".")
        hint_zh = "请在设置中检查 TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY" + (
            "以及本机时钟" if "SignatureExpire" in code else "") + "。"
        return ProviderError(f"{VENDOR} refused the credentials ({code}: {message}). {hint_en}",
                             f"{VENDOR} 拒绝了密钥（{code}：{message}）。{hint_zh}", retryable=False, vendor_code=code)
    if code.startswith(RETRYABLE):
        return ProviderError(f"{VENDOR} is busy ({code}: {message}); trying again later.",
                             f"{VENDOR} 繁忙（{code}：{message}），稍后重试。", retryable=True, vendor_code=code)
    if code.startswith("ResourceNotFound"):
        return ProviderError(f"{VENDOR} does not know this task any more ({code}: {message}); tasks are kept "
                             "3 days. Run the job again.", f"{VENDOR} 找不到该任务（{code}：{message}），任务仅保留 3 天。"
                             "请重新运行。", retryable=False, vendor_code=code)
    return ProviderError(f"{VENDOR} refused the request ({code}: {message}). Check the parameters (model, version, "
                         "duration, resolution, SubAppId).", f"{VENDOR} 拒绝了请求（{code}：{message}）。请检查参数"
                         "（模型、版本、时长、分辨率、SubAppId）。", retryable=False, vendor_code=code)


def _http_status_error(response: httpx.Response) -> ProviderError:
    return http.http_error(VENDOR, response.status_code, retry_after=http.retry_after_of(response))


class TencentVodEngine(KeyedCloudEngine, vendor=VENDOR, base_env="TENCENTCLOUD_VOD_ENDPOINT",
                       keys=("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"), default_base=DEFAULT_ENDPOINT):
    id = "tencent-vod"
    async_chain = True  # create, polls, downloads on the cloud loop (app/cloud_chain.py)
    title = "Tencent Cloud VOD AIGC (Hailuo, Kling, Jimeng, Vidu, OS, GV, Hunyuan)"
    tasks = ("t2v", "i2v", "kf2v", "ref2v")
    Params = TencentVodParams
    can_cancel = False

    # --- configuration --------------------------------------------------------------
    def endpoint(self) -> str:
        return self.base_url() + "/"  # every action is a POST to the root (the signature covers "/")

    def _sub_app_id(self, params: TencentVodParams | None = None) -> int | None:
        if params is not None and params.sub_app_id:
            return params.sub_app_id
        raw = self.secret("TENCENTCLOUD_VOD_SUBAPPID")
        try:
            return int(raw) if raw else None
        except ValueError as exc:
            raise ValidationError("TENCENTCLOUD_VOD_SUBAPPID must be a number (the VOD application id).",
                                  "TENCENTCLOUD_VOD_SUBAPPID 必须是数字（点播应用 ID）。") from exc

    # --- transport ------------------------------------------------------------------
    def _signed(self, action: str, payload: dict) -> tuple[str, bytes, dict, tuple]:
        sid, key = self.require_keys()
        url = self.endpoint()
        host = urlsplit(url).netloc
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "Host": host, "X-TC-Action": action,
                   "X-TC-Timestamp": str(ts), "X-TC-Version": API_VERSION,
                   "Authorization": tc3_authorization(sid, key, host=host, body=body, timestamp=ts)}
        return url, body, headers, (sid, key)

    def call(self, action: str, payload: dict, *, timeout: httpx.Timeout | None = None) -> dict:
        """One signed API call; returns ``Response`` or raises the mapped ProviderError."""
        url, body, headers, secrets = self._signed(action, payload)
        try:
            response = http.get_client().post(url, content=body, headers=headers, timeout=timeout or http.timeouts())
        except httpx.HTTPError as exc:
            raise http.transport_error(VENDOR, exc) from exc
        return _answer(response, action, secrets)

    async def acall(self, action: str, payload: dict) -> dict:
        """``call`` on the cloud loop (``engines.cloud.aio``)."""
        url, body, headers, secrets = self._signed(action, payload)
        try:
            async with aio.slot(VENDOR):
                response = await aio.request("POST", url, content=body, headers=headers, timeout=http.timeouts())
        except httpx.HTTPError as exc:
            raise http.transport_error(VENDOR, exc) from exc
        return _answer(response, action, secrets)

    def _call_io(self, action: str, payload: dict, *, retries: int | None = None) -> steps.Io:
        """``call`` / ``acall`` as one ``Io`` (``engines.cloud.steps``), retried ``retries`` times when set."""
        what = f"{VENDOR} {action}"

        def sync() -> dict:
            once = lambda: self.call(action, payload)  # noqa: E731
            return http.with_retries(once, what=what, attempts=retries) if retries else once()

        async def async_() -> dict:
            once = lambda: self.acall(action, payload)  # noqa: E731
            return await (aio.with_retries(once, what=what, attempts=retries) if retries else once())

        return steps.Io(sync, async_)

    # --- checks and body ------------------------------------------------------------
    def model_spec(self, model: str) -> ModelSpec | None:
        return modeltable.for_settings(self.id, self.settings).spec(model, modeltable.allow_unknown(self.settings))

    @staticmethod
    def version_of(p: TencentVodParams, spec: ModelSpec | None) -> str | None:
        """The ModelVersion to send: the table's spelling of the one asked for (``3.1-fast`` → ``3.1-Fast``),
        else the model's default (the first listed)."""
        if spec is None or not spec.versions:
            return p.model_version
        if p.model_version is None:
            return spec.versions[0]
        return next((v for v in spec.versions if v.lower() == p.model_version.lower()), p.model_version)

    def check(self, request: EngineRequest) -> None:
        p: TencentVodParams = request.params
        spec = self.model_spec(p.model)

        def bad(field: str, value, allowed) -> ValidationError:
            shown = ", ".join(str(a) for a in allowed) if allowed else "none (not settable for this model)"
            return ValidationError(f"{p.model}: {field} {value} is not allowed; use one of: {shown}.",
                                   f"{p.model}：{field} 不支持 {value}；可选：{shown}。")

        if spec is not None:
            if p.model_version is not None and self.version_of(p, spec) not in spec.versions:
                raise bad("model_version", p.model_version, spec.versions)
            if p.duration is not None and spec.durations and p.duration not in spec.durations:
                raise bad("duration", p.duration, spec.durations)
            if p.resolution is not None and p.resolution.upper() not in spec.resolutions:
                raise bad("resolution", p.resolution, spec.resolutions)
            if p.aspect_ratio is not None and p.aspect_ratio not in spec.ratios:
                raise bad("aspect_ratio", p.aspect_ratio, spec.ratios)
            if p.audio_generation is not None and "audio_generation" not in spec.fields:
                raise ValidationError(f"{p.model} has no 'audio_generation' setting; leave it empty.",
                                      f"{p.model} 不支持参数“audio_generation”，请留空。")
        files = [im for im in request.images if not (im.role == "last_frame" and im.url)]
        limit = (spec.max_files if spec is not None else None) or MAX_FILES
        if len(files) > limit:
            raise ValidationError(f"{p.model} takes at most {limit} image{'s' if limit > 1 else ''} "
                                  "(a last frame given as a URL does not count).",
                                  f"{p.model} 最多 {limit} 张图片（以 URL 提供的尾帧不计）。")
        if len(request.prompt) > MAX_PROMPT:
            raise ValidationError(f"The prompt is {len(request.prompt)} characters; Tencent VOD accepts {MAX_PROMPT}.",
                                  f"提示词 {len(request.prompt)} 字，腾讯云点播上限 {MAX_PROMPT} 字。")
        roles = [im.role for im in request.images]
        if "last_frame" in roles and "first_frame" not in roles:
            raise ValidationError("A last frame needs a first frame too.", "使用尾帧时必须同时提供首帧。")
        inline = 0
        for im in request.images:
            if im.url:
                continue
            size = im.path.stat().st_size if im.path and im.path.exists() else 0
            if size > MAX_IMAGE_BYTES:
                raise ValidationError(f"{im.role}: the image is {size / 2**20:.1f} MB; Tencent VOD accepts 10 MB.",
                                      f"{im.role}：图片 {size / 2**20:.1f} MB，腾讯云点播上限 10 MB。")
            inline += size
        if inline > MAX_BASE64_TOTAL:
            raise ValidationError(f"The uploaded images total {inline / 2**20:.1f} MB; Tencent VOD accepts 7 MB "
                                  "in one request. Use smaller images or public URLs.",
                                  f"上传图片共 {inline / 2**20:.1f} MB，腾讯云点播单次上限 7 MB。请缩小图片或使用公开 URL。")

    def create_payload(self, request: EngineRequest, session_id: str) -> dict:
        p: TencentVodParams = request.params
        version = self.version_of(p, self.model_spec(p.model))
        body: dict = {"ModelName": p.model, "SessionId": session_id, "SessionContext": f"xianying:{request.job_id}"}
        if version:
            body["ModelVersion"] = version
        sub = self._sub_app_id(p)
        if sub:
            body["SubAppId"] = sub
        if request.prompt:
            body["Prompt"] = request.prompt
        if request.negative_prompt:
            body["NegativePrompt"] = request.negative_prompt
        if p.enhance_prompt is not None:
            body["EnhancePrompt"] = "Enabled" if p.enhance_prompt else "Disabled"
        if p.seed is not None:
            body["Seed"] = p.seed
        files = []
        for im in request.images:
            if im.role == "last_frame" and im.url:  # a last frame by URL has its own field
                body["LastFrameUrl"] = im.url
                continue
            item = {"Category": "Image", "Usage": USAGE.get(im.role, "Reference")}
            if im.url:
                item.update(Type="Url", Url=im.url)
            else:
                item.update(Type="Base64", Base64=http.image_payload(im, vendor=VENDOR, max_bytes=MAX_IMAGE_BYTES,
                                                                      raw_base64=True))
            files.append(item)
        if files:
            body["FileInfos"] = files
        out = {"StorageMode": "Temporary"}
        if p.duration is not None:
            out["Duration"] = p.duration
        if p.resolution is not None:
            out["Resolution"] = p.resolution.upper()
        if p.aspect_ratio is not None:
            out["AspectRatio"] = p.aspect_ratio
        if p.audio_generation is not None:
            out["AudioGeneration"] = "Enabled" if p.audio_generation else "Disabled"
        body["OutputConfig"] = out
        return body

    # --- create (idempotent through SessionId) --------------------------------------
    def create_plan(self, request: EngineRequest) -> safecreate.CreatePlan | str:
        job = request.job_id
        note = self.journal.load(job)
        known = note.get("remote_id") or note.get("task_id")
        if known and note.get("state") in (None, "created"):
            if self._usable(known, request.params):
                return str(known)
            # the earlier task failed: this is a retry of the job, under a new SessionId
            self.journal.save(job, remote_id=None, task_id=None, state="not_created",
                              generation=int(note.get("generation") or 1))

        def session(generation: int) -> str:
            return f"xianying-{job}" + (f"-{generation}" if generation > 1 else "")

        def send(generation: int) -> steps.Steps:
            sid = session(generation)
            try:
                answer = yield self._call_io("CreateAigcVideoTask", self.create_payload(request, sid))
                return str(answer["TaskId"])
            except ProviderError as exc:
                if exc.vendor_code != "InvalidParameterValue.SessionId":
                    raise
            try:  # a repeat: Tencent made it before, find it
                found = yield from self.find_session(sid, request.params)
            except ProviderError as exc:
                raise safecreate.maybe_created(VENDOR, f"SessionId {sid}", " (Tencent has it, but listing its "
                                               "tasks failed)", "（腾讯云已有该任务，但查询任务列表失败）") from exc
            if found is None:
                raise safecreate.maybe_created(VENDOR, f"SessionId {sid}", " (Tencent refused the repeat as a "
                                               "duplicate but does not list the task)", "（腾讯云以重复为由拒绝，"
                                               "但查不到该任务）")
            return found

        # SessionId makes a re-send safe: safecreate.RECOVERY["tencent-vod"] == "dedupe"
        return safecreate.CreatePlan(engine_id=self.id, vendor=VENDOR, send=send,
                                     request_ref=lambda g: f"SessionId {session(g)}")

    def allow_resend(self, job_id: str) -> None:
        """"Retry anyway": the next start() sends a new create under a new SessionId."""
        safecreate.allow_resend(self.journal, job_id)

    def _usable(self, task_id: str, params: TencentVodParams) -> bool:
        """True when an earlier task of this job is still worth following (not failed)."""
        try:
            state = self.poll(task_id, None, params=params)
        except ProviderError as exc:
            if exc.retryable:
                raise
            return False
        return state.status in ("queued", "running", "succeeded")

    def find_session(self, session: str, params: TencentVodParams | None = None) -> steps.Steps:
        """The task created earlier with this SessionId, or None (DescribeTasks, last 3 days; each page
        tried ``XIANYING_LOOKUP_ATTEMPTS`` times). As steps (``engines.cloud.steps``)."""
        after = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        query: dict = {"CreateTime": {"After": after}, "Limit": 100, "Sort": {"Field": "CreateTime", "Order": "Desc"}}
        sub = self._sub_app_id(params)
        if sub:
            query["SubAppId"] = sub
        for _ in range(LOOKUP_PAGES):
            resp = yield self._call_io("DescribeTasks", dict(query), retries=safecreate.lookup_attempts())
            for task in resp.get("TaskSet") or []:
                if task.get("SessionId") == session and task.get("TaskId"):
                    return str(task["TaskId"])
            token = resp.get("ScrollToken")
            if not token:
                return None
            query["ScrollToken"] = token
        return None

    # --- poll / collect -------------------------------------------------------------
    def _detail_query(self, remote_id: str, params: TencentVodParams | None) -> dict:
        query: dict = {"TaskId": remote_id}
        sub = self._sub_app_id(params)
        if sub:
            query["SubAppId"] = sub
        return query

    def poll(self, remote_id: str, request: EngineRequest | None, *, params: TencentVodParams | None = None) -> RemoteState:
        query = self._detail_query(remote_id, params or (request.params if request is not None else None))
        return task_state(self.call("DescribeTaskDetail", query))

    async def apoll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        """``poll`` on the cloud loop (``engines.cloud.aio``)."""
        query = self._detail_query(remote_id, request.params)
        return task_state(await self.acall("DescribeTaskDetail", query))

    CLEAR_JOURNAL_ON_COLLECT = True

    def poll_delay(self, polls: int) -> float:
        """Tencent asks for a query every 5-10 s (``XIANYING_POLL_SCALE`` scales it for tests)."""
        return min(5.0 + 1.0 * polls, 10.0) * http.poll_scale()


def _answer(response: httpx.Response, action: str, secrets: tuple) -> dict:
    """``Response`` of a Tencent Cloud answer, or its error mapped once."""
    if response.status_code >= 400:
        raise _http_status_error(response)
    data = http.error_body(response)
    resp = data.get("Response")
    if not isinstance(resp, dict):
        raise ProviderError(f"{VENDOR} answered {action} with something that is not its JSON; try again later.",
                            f"{VENDOR} 对 {action} 的响应不是有效 JSON，请稍后再试。", retryable=True,
                            vendor_code="bad_json")
    err = resp.get("Error")
    if isinstance(err, dict):
        raise api_error(str(err.get("Code") or "UnknownError"), str(err.get("Message") or ""), secrets)
    return resp


def task_state(resp: dict) -> RemoteState:
    """Turn a DescribeTaskDetail ``Response`` into a RemoteState."""
    raw = str(resp.get("Status") or "")
    task = resp.get("AigcVideoTask") or {}
    progress = task.get("Progress")
    info: dict = {"provider": "tencent-vod"}
    inp = task.get("Input") or {}
    if inp.get("ModelName"):
        info["model"] = f"{inp.get('ModelName')} {inp.get('ModelVersion') or ''}".strip()
    if raw in ("WAITING", "PROCESSING"):
        return RemoteState("queued" if raw == "WAITING" else "running", raw,
                           progress=float(progress) if isinstance(progress, (int, float)) else None, info=info)
    err_code = task.get("ErrCode", 0) or 0
    ext = str(task.get("ErrCodeExt") or "")
    message = str(task.get("Message") or "")
    output = task.get("Output") or {}
    urls = [f["FileUrl"] for f in output.get("FileInfos") or [] if isinstance(f, dict) and f.get("FileUrl")]
    if isinstance(output.get("Usage"), dict):
        info["usage"] = output["Usage"]
        if output["Usage"].get("OutputSeconds") is not None:
            info["video_seconds"] = output["Usage"]["OutputSeconds"]
    if urls:
        info["video_urls"] = urls
    if raw == "FINISH" and not err_code and not ext and urls:
        return RemoteState("succeeded", raw, progress=100.0, urls=urls, info=info)
    if raw not in ("FINISH", "ABORTED"):
        return RemoteState("running", raw or "UNKNOWN", info=info)
    if ext.startswith(MODERATION):
        error = moderation_error(ext, message)
    elif raw == "FINISH" and not err_code and not ext:
        error = ProviderError(f"{VENDOR} finished the task without a video file.",
                              f"{VENDOR} 任务已完成但没有视频文件。", vendor_code="no_output")
    else:
        code = ext or str(err_code)
        error = ProviderError(f"{VENDOR} could not make the video ({code}: {message or raw}).",
                              f"{VENDOR} 生成视频失败（{code}：{message or raw}）。", vendor_code=code)
    info["error"] = {"code": ext or err_code, "message": message}
    return RemoteState("failed", raw, urls=urls, error=error, info=info)
