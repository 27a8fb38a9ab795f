"""A loopback Zhipu BigModel: ``/videos/generations`` and ``/async-result/{id}``.

Each task walks through ``plan`` (one status per query; the last sticks). Like the real API,
which does not promise to deduplicate on ``request_id``, a repeated one makes a second task;
``dedupe_request_id = True`` refuses a repeat with 1231 instead (the SDK's error shape).
``lose_answers = n`` makes the next n creates succeed but drop the connection unanswered
(a crash or a network cut after Zhipu created the task).
"""

from __future__ import annotations

import re
import threading
import uuid

from tests.cloud.fakeserver import FakeServer, Reply, Req

PREFIX = "/api/paas/v4"
MODELS = {"cogvideox-3", "cogvideox-2", "cogvideox-flash", "cogvideox", "viduq1-text", "viduq1-image",
          "viduq1-start-end", "vidu2-image", "vidu2-start-end", "vidu2-reference"}
_DATA_URI = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.I)


def error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def _image_ok(value, vidu: bool) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith(("http://", "https://")):
        return True
    return bool(_DATA_URI.match(value)) if vidu or value.startswith("data:") else len(value) > 0


class FakeZhipu(FakeServer):
    def __init__(self, api_key: str, video: bytes):
        super().__init__()
        self.api_key = api_key
        self.video = video
        self.video_sound: bytes | None = None  # served for with_audio: true (set by the test fixture)
        self.models = set(MODELS)  # a test may teach the fake a new model
        self.plan = ["PROCESSING", "SUCCESS"]
        self.fail_error: dict | None = None  # an "error" object put on FAIL answers
        self.url_ttl = 600.0
        self.lose_answers = 0
        self.dedupe_request_id = False
        self.tasks: dict[str, dict] = {}
        self.request_ids: set[str] = set()
        self.bodies: list[dict] = []
        self._tasks_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.url + PREFIX

    @property
    def created(self) -> int:
        return len(self.tasks)

    def route(self, req: Req) -> str:
        if req.path.startswith("/files/"):
            return "download"
        if req.method == "POST" and req.path == PREFIX + "/videos/generations":
            return "create"
        if req.method == "GET" and re.fullmatch(PREFIX + r"/async-result/[^/]+", req.path):
            return "poll"
        return "other"

    def chaos_reply(self, kind: str) -> Reply:
        if kind == "429":
            return error(429, "1302", "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。")
        return error(500, "500", "Internal Error")

    def handle(self, req: Req, route: str) -> Reply:
        if route == "other":
            return error(404, "1210", f"Path {req.path} not found")
        auth = req.headers.get("authorization")
        if not auth:
            return error(401, "1001", "Header中未收到Authentication参数，无法进行身份验证。")
        if auth != f"Bearer {self.api_key}":
            return error(401, "1002", "Authentication Token非法，请确认Authentication Token正确传递。")
        return self._create(req) if route == "create" else self._query(req.path.rsplit("/", 1)[1])

    def _create(self, req: Req) -> Reply:
        body = req.json()
        if not isinstance(body, dict):
            return error(400, "1210", "API 调用参数有误，请检查文档。")
        model = body.get("model")
        if model not in self.models:
            return error(400, "1211", "模型不存在，请检查模型代码。")
        prompt, image = body.get("prompt"), body.get("image_url")
        if not prompt and not image:
            return error(400, "1214", "prompt 与 image_url 不能同时为空")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 512):
            return error(400, "1214", "prompt 长度超过限制")
        vidu = str(model).startswith("vidu")
        images = image if isinstance(image, list) else ([image] if image is not None else [])
        if model.endswith("-start-end") and len(images) != 2:
            return error(400, "1214", "image_url 需要首帧和尾帧两张图片")
        if model == "vidu2-reference" and not 1 <= len(images) <= 3:
            return error(400, "1214", "image_url 需要 1 到 3 张参考图")
        cog3 = {"quality": ("speed", "quality"), "fps": (30, 60), "duration": (5, 10), "with_audio": (True, False)}
        for key, allowed in cog3.items():
            if str(model).startswith("cogvideox") and body.get(key) is not None and body[key] not in allowed:
                return error(400, "1214", f"{key} 参数错误")
        size = body.get("size")
        if size is not None:
            w, _, h = str(size).partition("x")
            if not (w.isdigit() and h.isdigit()) or int(w) * int(h) > 3840 * 2160:
                return error(400, "1214", "size 参数错误")
        if any(not _image_ok(im, vidu) for im in images):
            return error(400, "1214", "image_url 格式错误")
        if "blocked" in (prompt or ""):
            return error(400, "1301", "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。")
        request_id = body.get("request_id") or uuid.uuid4().hex
        with self._tasks_lock:
            if self.dedupe_request_id and request_id in self.request_ids:
                return error(400, "1231", f"您当前已有请求：{request_id}")
            self.request_ids.add(request_id)
            task_id = f"{uuid.uuid4().int % 10**19}-{uuid.uuid4().hex[:8]}"
            self.tasks[task_id] = {"body": body, "queries": 0, "status": "PROCESSING", "url": None,
                                   "request_id": request_id}
            self.bodies.append(body)
            lose = self.lose_answers > 0
            if lose:
                self.lose_answers -= 1
        answer = {"model": model, "id": task_id, "request_id": request_id, "task_status": "PROCESSING"}
        return Reply(200, answer, drop=lose)

    def _query(self, task_id: str) -> Reply:
        with self._tasks_lock:
            task = self.tasks.get(task_id)
            if task is None:
                return error(404, "1214", "任务不存在")
            task["status"] = self.plan[min(task["queries"], len(self.plan) - 1)]
            task["queries"] += 1
            body = task["body"]
            answer = {"model": body["model"], "task_status": task["status"], "request_id": task["request_id"]}
            if task["status"] == "SUCCESS":
                if task["url"] is None:
                    data = self.video_sound if body.get("with_audio") and self.video_sound else self.video
                    task["url"] = self.publish(data, f"{task_id}.mp4", ttl=self.url_ttl)
                answer["video_result"] = [{"url": task["url"], "cover_image_url": self.url + f"/covers/{task_id}.png"}]
            elif task["status"] == "FAIL" and self.fail_error:
                answer["error"] = self.fail_error
            return Reply(200, answer)
