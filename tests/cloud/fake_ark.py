"""A loopback Volcengine Ark (``/api/v3/contents/generations/tasks``) speaking the real protocol.

Bearer auth (401 ``AuthenticationError``), strict create bodies (content items, roles, image
URL or data URI, field types; unknown fields refused), task ids ``cgt-...``, the status
vocabulary queued → running → succeeded (or failed / cancelled / expired), list with
``filter.model`` / ``filter.status`` / paging, DELETE that cancels queued tasks only, error
bodies ``{"error": {code, message, param, type}}`` and signed, expiring result URLs.
Prompt markers choose the outcome: ``[[banned]]`` (400 at create), ``[[fail]]``,
``[[nsfw-output]]``, ``[[expire]]``; ``hold_queued`` keeps new tasks queued.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from pathlib import Path

from tests.cloud.fakeserver import FakeServer, Reply, Req, tiny_mp4

API_KEY = "ark-fake-key-0123456789abcdef"
PREFIX = "/api/v3/contents/generations/tasks"
MODELS = {"doubao-seedance-1-0-pro-250528", "doubao-seedance-1-0-pro-fast-251015",
          "doubao-seedance-1-0-lite-t2v-250428", "doubao-seedance-1-0-lite-i2v-250428",
          "doubao-seedance-1-5-pro-251215", "doubao-seedance-2-0-260128", "doubao-seedance-2-0-fast-260128",
          "doubao-seedance-2-0-mini-260615"}
SOUND_BY_DEFAULT = ("doubao-seedance-1-5-", "doubao-seedance-2-0")  # generate_audio defaults to true there
FIELDS = {"model", "content", "resolution", "ratio", "duration", "frames", "seed", "watermark", "camera_fixed",
          "generate_audio", "return_last_frame", "callback_url", "service_tier", "execution_expires_after",
          "safety_identifier", "priority", "draft", "tools", "output_format", "omni_reference_task_type"}
ROLES = {"first_frame", "last_frame", "reference_image"}
MEDIA = {"video_url": "reference_video", "audio_url": "reference_audio"}  # Seedance 2.0 references
_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp|bmp|gif|tiff|heic);base64,[A-Za-z0-9+/=]+$")


def ark_error(status: int, code: str, message: str, param: str = "", kind: str = "BadRequest") -> Reply:
    return Reply(status, {"error": {"code": code, "message": message, "param": param, "type": kind}})


class FakeArk(FakeServer):
    def __init__(self, *, steps: int = 2, url_ttl: float = 600.0):
        super().__init__()
        self.key = API_KEY
        self.steps = steps
        self.url_ttl = url_ttl
        self.hold_queued = False
        self.slow_after_create = 0.0
        self.tasks: dict[str, dict] = {}
        self.creates = 0
        self._video: bytes | None = None
        self._video_sound: bytes | None = None
        self.models = set(MODELS)  # a test may teach the fake a new model
        self._state_lock = threading.Lock()

    @property
    def base(self) -> str:
        return self.url + "/api/v3"

    def video(self) -> bytes:
        if self._video is None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                self._video = tiny_mp4(Path(tmp) / "v.mp4").read_bytes()
        return self._video

    def video_with_sound(self) -> bytes:
        if self._video_sound is None:
            import tempfile

            from tests.cloud.fakeserver import tiny_mp4_with_audio

            with tempfile.TemporaryDirectory() as tmp:
                self._video_sound = tiny_mp4_with_audio(Path(tmp) / "a.mp4").read_bytes()
        return self._video_sound

    def route(self, req: Req) -> str:
        if req.path.startswith("/files/"):
            return "download"
        if req.path == PREFIX:
            return {"POST": "create", "GET": "list"}.get(req.method, "other")
        if req.path.startswith(PREFIX + "/"):
            return {"GET": "get", "DELETE": "delete"}.get(req.method, "other")
        return "other"

    def chaos_reply(self, kind: str) -> Reply:
        if kind == "429":
            return ark_error(429, "RateLimitExceeded.EndpointRPMExceeded", "Too many requests.", kind="TooManyRequests")
        return ark_error(500, "InternalServiceError", "The service encountered an unexpected internal error.",
                         kind="InternalServerError")

    def handle(self, req: Req, route: str) -> Reply:
        if route == "other":
            return ark_error(404, "NotFound", f"{req.method} {req.path} is not an API", kind="NotFound")
        if req.headers.get("authorization") != f"Bearer {self.key}":
            return ark_error(401, "AuthenticationError", "The API key in the request is missing or invalid.",
                             kind="Unauthorized")
        return getattr(self, "_" + route)(req)

    # --- create -----------------------------------------------------------------------
    def _validate(self, body) -> Reply | None:
        if not isinstance(body, dict):
            return ark_error(400, "InvalidParameter", "The request body is not JSON.")
        extra = set(body) - FIELDS
        if extra:
            return ark_error(400, "InvalidParameter", f"Unknown parameter {sorted(extra)[0]}.", sorted(extra)[0])
        model = body.get("model")
        if model not in self.models and not re.match(r"^ep-[0-9A-Za-z-]+$", str(model)):
            return ark_error(404, "InvalidEndpointOrModel.NotFound", f"The model {model} does not exist.", "model",
                             "NotFound")
        content = body.get("content")
        if not isinstance(content, list) or not content:
            return ark_error(400, "MissingParameter", "content is required.", "content")
        for item in content:
            kind = item.get("type")
            if kind == "text":
                if not isinstance(item.get("text"), str):
                    return ark_error(400, "InvalidParameter", "text must be a string.", "content.text")
            elif kind == "image_url":
                url = str((item.get("image_url") or {}).get("url") or "")
                if not (url.startswith(("http://", "https://")) or _DATA_URI.match(url)):
                    return ark_error(400, "InvalidParameter", "image_url.url must be a URL or a data URI.",
                                     "content.image_url")
                if item.get("role", "first_frame") not in ROLES:
                    return ark_error(400, "InvalidParameter", "role is not valid.", "content.role")
            elif kind in MEDIA:
                url = str((item.get(kind) or {}).get("url") or "")
                if not url.startswith(("http://", "https://", "asset://")):
                    return ark_error(400, "InvalidParameter", f"{kind}.url must be a URL.", f"content.{kind}")
                if item.get("role") != MEDIA[kind]:
                    return ark_error(400, "InvalidParameter", "role is not valid.", "content.role")
                if not str(model).startswith("doubao-seedance-2-0"):
                    return ark_error(400, "InvalidParameter", f"{model} does not take {kind}.", "content.type")
            else:
                return ark_error(400, "InvalidParameter", f"content type {kind} is not valid.", "content.type")
        for kind in MEDIA:
            if sum(1 for item in content if item.get("type") == kind) > 3:
                return ark_error(400, "InvalidParameter", f"at most 3 {kind} items.", "content")
        if sum(1 for item in content if item.get("role") == "reference_image") > 9:
            return ark_error(400, "InvalidParameter", "at most 9 reference images.", "content")
        checks = {"resolution": lambda v: v in ("480p", "720p", "1080p"),
                  "ratio": lambda v: v in ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"),
                  "duration": lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == -1 or 2 <= v <= 15),
                  "seed": lambda v: isinstance(v, int) and not isinstance(v, bool) and -1 <= v <= 2**32 - 1,
                  "watermark": lambda v: isinstance(v, bool), "camera_fixed": lambda v: isinstance(v, bool),
                  "generate_audio": lambda v: isinstance(v, bool), "return_last_frame": lambda v: isinstance(v, bool)}
        for key, ok in checks.items():
            if key in body and not ok(body[key]):
                return ark_error(400, "InvalidParameter", f"{key} is not valid.", key)
        return None

    def _create(self, req: Req) -> Reply:
        body = req.json()
        if isinstance(body, dict):  # the SDK sends every optional field, null when unset
            body = {k: v for k, v in body.items() if v is not None}
        problem = self._validate(body)
        if problem is not None:
            return problem
        text = " ".join(i.get("text", "") for i in body["content"] if i.get("type") == "text")
        if "[[banned]]" in text:
            return ark_error(400, "InputTextSensitiveContentDetected",
                             "The request failed because the input text may contain sensitive information.")
        with self._state_lock:
            task_id = f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:5]}"
            seed = body.get("seed", -1)
            self.tasks[task_id] = {"body": body, "text": text, "gets": 0, "created_at": int(time.time()),
                                   "status": "queued", "seed": seed if seed != -1 else random.randrange(2**32)}
            self.creates += 1
        if self.slow_after_create:
            time.sleep(self.slow_after_create)
        return Reply(200, {"id": task_id})

    # --- read -------------------------------------------------------------------------
    def _advance(self, task_id: str, task: dict) -> None:
        with self._state_lock:
            if task["status"] not in ("queued", "running") or self.hold_queued:
                return
            task["gets"] += 1
            if task["gets"] < self.steps:
                task["status"] = "running"
                return
            text = task["text"]
            if "[[fail]]" in text:
                task.update(status="failed", error={"code": "InternalServiceError", "message": "generation failed"})
            elif "[[nsfw-output]]" in text:
                task.update(status="failed", error={"code": "OutputVideoSensitiveContentDetected",
                                                    "message": "The output video may contain sensitive content."})
            elif "[[expire]]" in text:
                task.update(status="expired", error={"code": "TaskExpired", "message": "execution expired"})
            else:
                body = task["body"]
                sound = body.get("generate_audio", str(body["model"]).startswith(SOUND_BY_DEFAULT))
                data = self.video_with_sound() if sound else self.video()
                task.update(status="succeeded", video_url=self.publish(data, f"{task_id}.mp4", ttl=self.url_ttl))
                if body.get("return_last_frame"):
                    from tests.cloud.fakeserver import tiny_png

                    task["last_frame_url"] = self.publish(tiny_png(), f"{task_id}-last.png", ttl=self.url_ttl)

    def view(self, task_id: str, task: dict) -> dict:
        body = task["body"]
        out = {"id": task_id, "model": body["model"], "status": task["status"], "seed": task["seed"],
               "resolution": body.get("resolution", "720p"), "ratio": body.get("ratio", "16:9"),
               "duration": body.get("duration", 5), "framespersecond": 24, "created_at": task["created_at"],
               "updated_at": int(time.time())}
        if task["status"] == "succeeded":
            out["content"] = {"video_url": task["video_url"]}
            if task.get("last_frame_url"):
                out["content"]["last_frame_url"] = task["last_frame_url"]
            out["usage"] = {"completion_tokens": 108900, "total_tokens": 108900}
        if task.get("error"):
            out["error"] = task["error"]
        return out

    def _get(self, req: Req) -> Reply:
        task_id = req.path.rsplit("/", 1)[1]
        task = self.tasks.get(task_id)
        if task is None:
            return ark_error(404, "ResourceNotFound", f"The task {task_id} does not exist.", kind="NotFound")
        self._advance(task_id, task)
        return Reply(200, self.view(task_id, task))

    def _list(self, req: Req) -> Reply:
        q = req.query
        rows = sorted(self.tasks.items(), key=lambda kv: (kv[1]["created_at"], kv[0]), reverse=True)
        if q.get("filter.model"):
            rows = [r for r in rows if r[1]["body"]["model"] == q["filter.model"]]
        if q.get("filter.status"):
            rows = [r for r in rows if r[1]["status"] == q["filter.status"]]
        page, size = int(q.get("page_num") or 1), int(q.get("page_size") or 10)
        items = [self.view(tid, t) for tid, t in rows[(page - 1) * size: page * size]]
        return Reply(200, {"total": len(rows), "items": items})

    def _delete(self, req: Req) -> Reply:
        task_id = req.path.rsplit("/", 1)[1]
        task = self.tasks.get(task_id)
        if task is None:
            return ark_error(404, "ResourceNotFound", f"The task {task_id} does not exist.", kind="NotFound")
        with self._state_lock:
            if task["status"] == "running":
                return ark_error(400, "InvalidAction.TaskRunning", "A running task cannot be cancelled.")
            if task["status"] == "queued":
                task["status"] = "cancelled"
            else:
                del self.tasks[task_id]
        return Reply(200, {})
