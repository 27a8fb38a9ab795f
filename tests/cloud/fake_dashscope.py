"""A loopback DashScope: the async video-synthesis and text-to-image (``text2image/image-synthesis``:
``input.prompt``, ``parameters.size`` ``W*H``, ``n`` 1–4; a finished task's ``output.results`` lists
``{url, orig_prompt, actual_prompt}`` and ``usage.image_count``) protocols as the official SDK speaks them.

Each created task walks through ``plan`` (one status per query; the last one sticks), e.g.
``["RUNNING", "SUCCEEDED"]``. ``hold=True`` keeps new tasks PENDING until cancelled.
``failure = (code, message)`` is reported when a plan reaches ``FAILED``.
``GET /api/v1/tasks`` lists tasks as the SDK's ``list`` asks (``start_time`` / ``end_time``
``YYYYMMDDhhmmss`` Beijing time, ``model_name``, ``status``, ``page_no``, ``page_size``):
``{request_id, data: [{task_id, request_id, model_name, status, gmt_create (ms)}], total,
total_page, page_no, page_size}``; rows carry no prompt (a task's query shows ``orig_prompt``
once it has succeeded). DashScope has no idempotency key: every create makes a task.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from tests.cloud.fakeserver import FakeServer, Reply, Req

PREFIX = "/api/v1"
T2V = "/services/aigc/video-generation/video-synthesis"
KF2V = "/services/aigc/image2video/video-synthesis"
T2I = "/services/aigc/text2image/image-synthesis"
MODELS = {
    "wanx2.1-t2v-turbo": "t2v", "wanx2.1-t2v-plus": "t2v", "wan2.2-t2v-plus": "t2v", "wan2.5-t2v-preview": "t2v",
    "wanx2.1-i2v-turbo": "i2v", "wanx2.1-i2v-plus": "i2v", "wan2.2-i2v-plus": "i2v", "wan2.2-i2v-flash": "i2v",
    "wan2.5-i2v-preview": "i2v", "wanx2.1-kf2v-plus": "kf2v", "wan2.2-kf2v-flash": "kf2v",
    "wan2.6-t2v": "t2v", "wan2.6-i2v": "i2v", "wan2.7-i2v": "media", "wan2.7-r2v": "media",
    "wan2.2-t2i-flash": "t2i", "wan2.2-t2i-plus": "t2i", "wanx2.1-t2i-turbo": "t2i", "wanx2.1-t2i-plus": "t2i",
    "wan2.5-t2i-preview": "t2i",
}
MEDIA_TYPES = {"wan2.7-i2v": {"first_frame", "last_frame", "driving_audio", "first_clip"},
               "wan2.7-r2v": {"reference_image", "reference_video"}}
SOUND = ("wan2.5", "wan2.6", "wan2.7")  # these make video with sound unless parameters.audio is false
BEIJING = timezone(timedelta(hours=8))
_DATA_URI = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.I)


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"request_id": str(uuid.uuid4()), "code": code, "message": message})


class FakeDashScope(FakeServer):
    def __init__(self, api_key: str, video: bytes):
        super().__init__()
        self.api_key = api_key
        self.video = video
        self.video_sound: bytes | None = None  # served when the model makes sound (set by the test fixture)
        self.models = dict(MODELS)  # a test may teach the fake a new model
        self.plan = ["RUNNING", "SUCCEEDED"]
        self.hold = False
        self.failure = ("InternalError.Algo", "An internal error occurred during generation.")
        self.url_ttl = 600.0
        self.tasks: dict[str, dict] = {}
        self.bodies: list[dict] = []
        self._tasks_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.url + PREFIX

    def route(self, req: Req) -> str:
        path = req.path
        if path.startswith("/files/"):
            return "download"
        if req.method == "POST" and path in (PREFIX + T2V, PREFIX + KF2V, PREFIX + T2I):
            return "create"
        if req.method == "GET" and path.rstrip("/") == PREFIX + "/tasks":
            return "list"
        if req.method == "GET" and re.fullmatch(PREFIX + r"/tasks/[^/]+", path):
            return "poll"
        if req.method == "POST" and re.fullmatch(PREFIX + r"/tasks/[^/]+/cancel", path):
            return "cancel"
        return "other"

    def chaos_reply(self, kind: str) -> Reply:
        if kind == "429":
            return error(429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
        return error(500, "InternalError", "An internal error has occured, please try again later.")

    def handle(self, req: Req, route: str) -> Reply:
        if route == "other":
            return error(404, "NotFound", f"Path {req.path} not found.")
        if req.headers.get("authorization") != f"Bearer {self.api_key}":
            return error(401, "InvalidApiKey", "Invalid API-key provided.")
        if route == "create":
            return self._create(req)
        if route == "list":
            return self._list(req)
        task_id = req.path.split("/")[4]
        if route == "cancel":
            return self._cancel(task_id)
        return self._query(task_id)

    # --- create -----------------------------------------------------------------------
    def _create(self, req: Req) -> Reply:
        if req.headers.get("x-dashscope-async") != "enable":
            return error(403, "AccessDenied", "current user api does not support synchronous calls")
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return error(400, "InvalidParameter", "input is required")
        model = body.get("model")
        kind = self.models.get(model)
        if kind is None:
            return error(400, "InvalidParameter", "Model not exist.")
        if (kind == "kf2v") != req.path.endswith(KF2V) or (kind == "t2i") != req.path.endswith(T2I):
            return error(400, "InvalidParameter", "url error, please check url!")
        if kind == "t2i":
            problem = self._check_t2i(model, body["input"], body.get("parameters") or {})
            if problem:
                return error(400, "InvalidParameter", problem)
        inp, params = body["input"], body.get("parameters") or {}
        if kind == "t2v" and not inp.get("prompt"):
            return error(400, "InvalidParameter", "Field required: input.prompt")
        if kind == "media":
            media = inp.get("media")
            if not isinstance(media, list) or not media or any(
                    not isinstance(m, dict) or m.get("type") not in MEDIA_TYPES[model] or not isinstance(m.get("url"), str)
                    for m in media):
                return error(400, "InvalidParameter", f"input.media is not valid for {model}.")
            if model == "wan2.7-i2v" and not any(m["type"] in ("first_frame", "first_clip") for m in media):
                return error(400, "InvalidParameter", "input.media needs a first_frame or a first_clip.")
            if any(k in inp for k in ("img_url", "first_frame_url", "last_frame_url")):
                return error(400, "InvalidParameter", f"{model} takes input.media, not img_url.")
        if "audio_url" in inp and not str(model).startswith(SOUND[:2]):
            return error(400, "InvalidParameter", f"{model} does not take input.audio_url.")
        if "audio" in params and not isinstance(params["audio"], bool):
            return error(400, "InvalidParameter", "parameters.audio must be a boolean.")
        need = {"i2v": ("img_url",), "kf2v": ("first_frame_url", "last_frame_url")}.get(kind, ())
        for name in need:
            value = inp.get(name)
            if not isinstance(value, str) or not (value.startswith(("http://", "https://")) or _DATA_URI.match(value)):
                return error(400, "InvalidParameter", f"Field required: input.{name}")
            if _DATA_URI.match(value):
                try:
                    base64.b64decode(value.split(",", 1)[1], validate=True)
                except ValueError:
                    return error(400, "InvalidURL", f"input.{name} is not valid base64.")
        if len(inp.get("prompt") or "") > 800 or len(inp.get("negative_prompt") or "") > 500:
            return error(400, "InvalidParameter", "Range of input length should be [0, 800]")
        if "size" in params and not re.fullmatch(r"\d+\*\d+", str(params["size"])):
            return error(400, "InvalidParameter", "The size is not match the allowed size.")
        seed = params.get("seed")
        if seed is not None and not (isinstance(seed, int) and 0 <= seed <= 2147483647):
            return error(400, "InvalidParameter", "seed out of range")
        if "blocked" in (inp.get("prompt") or ""):
            return error(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
        task_id = str(uuid.uuid4())
        with self._tasks_lock:
            self.bodies.append(body)
            self.tasks[task_id] = {"body": body, "queries": 0, "status": "PENDING", "url": None,
                                   "created": time.time(), "request_id": str(uuid.uuid4())}
        return Reply(200, {"request_id": self.tasks[task_id]["request_id"],
                           "output": {"task_id": task_id, "task_status": "PENDING"}})

    @staticmethod
    def _check_t2i(model: str, inp: dict, params: dict) -> str | None:
        longest = 2000 if model.startswith("wan2.5") else 500
        if not isinstance(inp.get("prompt"), str) or not inp["prompt"].strip():
            return "Field required: input.prompt"
        if len(inp["prompt"]) > longest:
            return f"Range of input length should be [1, {longest}]"
        n = params.get("n", 1)
        if not (isinstance(n, int) and 1 <= n <= 4):
            return "n should be in [1, 4]"
        size = str(params.get("size", "1024*1024"))
        match = re.fullmatch(r"(\d+)\*(\d+)", size)
        if not match:
            return "The size is not match the allowed size."
        w, h = int(match[1]), int(match[2])
        if model.startswith("wan2.5"):
            ok = 768 * 768 <= w * h <= 1440 * 1440 and 0.25 <= w / h <= 4
        else:
            ok = 512 <= w <= 1440 and 512 <= h <= 1440
        return None if ok else f"The size {size} is not allowed for {model}."

    def _image_results(self, task_id: str, body: dict) -> list[dict]:
        from tests.cloud.fakeserver import tiny_png

        params = body.get("parameters") or {}
        n, (w, h) = params.get("n", 1), map(int, str(params.get("size", "1024*1024")).split("*"))
        prompt = body["input"]["prompt"]
        return [{"url": self.publish(tiny_png((30 + 50 * i, 120, 200), (w, h)), f"{task_id}-{i}.png", ttl=self.url_ttl),
                 "orig_prompt": prompt, "actual_prompt": prompt + "，细节丰富。"} for i in range(n)]

    # --- query / cancel ----------------------------------------------------------------
    def _query(self, task_id: str) -> Reply:
        with self._tasks_lock:
            task = self.tasks.get(task_id)
            if task is None:
                return Reply(200, {"request_id": str(uuid.uuid4()),
                                   "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
            if task["status"] not in ("CANCELED",) and not self.hold:
                step = min(task["queries"], len(self.plan) - 1)
                task["status"] = self.plan[step]
            task["queries"] += 1
            status = task["status"]
            out = {"task_id": task_id, "task_status": status, "submit_time": "2026-11-22 10:00:00.000",
                   "scheduled_time": "2026-11-22 10:00:01.000"}
            body = task["body"]
            if status == "SUCCEEDED" and self.models.get(body["model"]) == "t2i":
                if task["url"] is None:
                    task["url"] = self._image_results(task_id, body)
                out.update(end_time="2026-11-22 10:01:00.000", results=task["url"],
                           task_metrics={"TOTAL": len(task["url"]), "SUCCEEDED": len(task["url"]), "FAILED": 0})
                return Reply(200, {"request_id": str(uuid.uuid4()), "output": out,
                                   "usage": {"image_count": len(task["url"])}})
            if status == "SUCCEEDED":
                if task["url"] is None:
                    sound = str(body["model"]).startswith(SOUND) and (body.get("parameters") or {}).get("audio", True)
                    data = self.video_sound if sound and self.video_sound else self.video
                    task["url"] = self.publish(data, f"{task_id}.mp4", ttl=self.url_ttl)
                prompt = body["input"].get("prompt") or ""
                out.update(end_time="2026-11-22 10:01:00.000", video_url=task["url"], orig_prompt=prompt,
                           actual_prompt=prompt + "，画面细腻，光影柔和。")
                usage = {"video_count": 1, "video_duration": (body.get("parameters") or {}).get("duration", 5),
                         "video_ratio": (body.get("parameters") or {}).get("size", "1280*720")}
                return Reply(200, {"request_id": str(uuid.uuid4()), "output": out, "usage": usage})
            if status == "FAILED":
                out.update(code=self.failure[0], message=self.failure[1])
            return Reply(200, {"request_id": str(uuid.uuid4()), "output": out})

    def _list(self, req: Req) -> Reply:
        q = req.query

        def when(name: str) -> float | None:
            if not q.get(name):
                return None
            try:
                return datetime.strptime(q[name], "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()
            except ValueError:
                return None

        try:
            page, size = max(1, int(q.get("page_no") or 1)), max(1, min(int(q.get("page_size") or 10), 100))
        except ValueError:
            return error(400, "InvalidParameter", "page_no and page_size must be integers.")
        since, until = when("start_time"), when("end_time")
        with self._tasks_lock:
            rows = sorted(self.tasks.items(), key=lambda kv: kv[1]["created"], reverse=True)
        rows = [(tid, t) for tid, t in rows
                if (since is None or t["created"] >= since) and (until is None or t["created"] < until + 1)
                and (not q.get("model_name") or t["body"]["model"] == q["model_name"])
                and (not q.get("status") or t["status"] == q["status"])]
        data = [{"task_id": tid, "request_id": t["request_id"], "model_name": t["body"]["model"],
                 "status": t["status"], "gmt_create": int(t["created"] * 1000), "region": "cn-beijing"}
                for tid, t in rows[(page - 1) * size: page * size]]
        return Reply(200, {"request_id": str(uuid.uuid4()), "data": data, "total": len(rows),
                           "total_page": max(1, -(-len(rows) // size)), "page_no": page, "page_size": size})

    def _cancel(self, task_id: str) -> Reply:
        with self._tasks_lock:
            task = self.tasks.get(task_id)
            if task is None or task["status"] != "PENDING":
                return error(400, "UnsupportedOperation",
                             "Failed to cancel the task, please confirm if the task is in PENDING status.")
            task["status"] = "CANCELED"
        return Reply(200, {"request_id": str(uuid.uuid4())})
