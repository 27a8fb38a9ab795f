"""A loopback Tencent Cloud VOD (API 2018-07-17) speaking the real protocol.

* ``POST /`` with ``X-TC-Action``; every request's TC3-HMAC-SHA256 signature is recomputed
  here from the secret key (an implementation independent of the engine's) and checked,
  with the timestamp window; errors are HTTP 200 + ``Response.Error``.
* ``CreateAigcVideoTask`` validates the body (model/version, FileInfos with raw base64 only,
  SubAppId) and refuses a repeated ``SessionId`` with ``InvalidParameterValue.SessionId``.
* ``DescribeTaskDetail`` walks a task through PROCESSING to FINISH over ``steps`` queries;
  ``DescribeTasks`` lists tasks with their SessionId (newest first, ScrollToken paging).
* Results are signed URLs that expire (``url_ttl``).
Prompt markers choose the outcome: ``[[banned]]`` (refused at create), ``[[fail]]``,
``[[nsfw-output]]`` (task-level failures).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from tests.cloud.fakeserver import Fault, FakeServer, Reply, Req, tiny_mp4

SECRET_ID = "AKIDfakeTencentId000000000000000001"
SECRET_KEY = "fakeTencentSecretKey0000000000001"
SUB_APP_ID = 1500000001
VERSIONS = {"Hailuo": {"02", "2.3", "2.3-fast"}, "Kling": {"1.6", "2.0", "2.1", "2.5", "2.6", "O1"},
            "Vidu": {"q2", "q2-pro", "q2-turbo", "q3", "q3-pro", "q3-turbo"}, "OS": {"2.0"},
            "GV": {"3.1", "3.1-Fast"}, "Hunyuan": {"1.5"}, "Jimeng": {"3.0pro"}}
ACTIONS = {"CreateAigcVideoTask", "DescribeTaskDetail", "DescribeTasks"}


def error_reply(code: str, message: str) -> Reply:
    return Reply(200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}})


def error_fault(code: str, message: str = "fake error", times: int = 1) -> Fault:
    return Fault(status=200, body={"Response": {"Error": {"Code": code, "Message": message},
                                                "RequestId": str(uuid.uuid4())}}, times=times)


def expected_signature(secret_key: str, *, content_type: str, host: str, body: bytes, timestamp: str,
                       date: str, service: str = "vod") -> str:
    """The fake's own reading of the TC3 spec (kept apart from the engine's signer)."""
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical_request = "\n".join(("POST", "/", "", f"content-type:{content_type}\nhost:{host}\n",
                                   "content-type;host", payload_hash))
    scope = "/".join((date, service, "tc3_request"))
    string_to_sign = "\n".join(("TC3-HMAC-SHA256", timestamp, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()))
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencent(FakeServer):
    def __init__(self, *, steps: int = 2, url_ttl: float = 600.0, sub_app_id: int | None = SUB_APP_ID):
        super().__init__()
        self.keys = {SECRET_ID: SECRET_KEY}
        self.steps = steps
        self.url_ttl = url_ttl
        self.sub_app_id = sub_app_id
        self.tasks: dict[str, dict] = {}
        self.sessions: dict[str, str] = {}
        self.creates = 0  # tasks actually created (what Tencent would bill)
        self.slow_after_create = 0.0  # create the task, then answer this late
        self.signatures: list[dict] = []  # verified requests: what was signed
        self._video: bytes | None = None
        self._state_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.url + "/"

    def video(self) -> bytes:
        if self._video is None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                self._video = tiny_mp4(Path(tmp) / "v.mp4").read_bytes()
        return self._video

    def video_with_sound(self) -> bytes:
        if getattr(self, "_video_sound", None) is None:
            import tempfile

            from tests.cloud.fakeserver import tiny_mp4_with_audio

            with tempfile.TemporaryDirectory() as tmp:
                self._video_sound = tiny_mp4_with_audio(Path(tmp) / "a.mp4").read_bytes()
        return self._video_sound

    # --- dispatch ---------------------------------------------------------------------
    def route(self, req: Req) -> str:
        if req.path.startswith("/files/"):
            return "download"
        if req.method == "POST" and req.path == "/":
            return req.headers.get("x-tc-action", "missing-action")
        return "other"

    def chaos_reply(self, kind: str) -> Reply:
        if kind == "429":  # Tencent throttles inside an HTTP 200 answer
            return error_reply("RequestLimitExceeded", "Your request frequency has exceeded the limit.")
        return Reply(502, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})

    def handle(self, req: Req, route: str) -> Reply:
        if route == "other":
            return Reply(404, "not found")
        problem = self.verify(req)
        if problem is not None:
            return error_reply(*problem)
        if route not in ACTIONS:
            return error_reply("InvalidAction", f"The action {route} does not exist.")
        body = req.json()
        if not isinstance(body, dict):
            return error_reply("InvalidParameter", "The request body is not a JSON object.")
        if self.sub_app_id is not None and body.get("SubAppId") != self.sub_app_id:
            return error_reply("InvalidParameterValue.SubAppId", "SubAppId is missing or wrong.")
        return getattr(self, "_" + route)(body)

    def verify(self, req: Req) -> tuple[str, str] | None:
        h = req.headers
        if h.get("x-tc-version") != "2018-07-17":
            return "InvalidParameterValue.Version", "X-TC-Version must be 2018-07-17."
        auth = h.get("authorization", "")
        algorithm, _, rest = auth.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        if algorithm != "TC3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
            return "AuthFailure.InvalidAuthorization", "The Authorization header is malformed."
        try:
            sid, date, service, terminator = fields["Credential"].split("/")
        except ValueError:
            return "AuthFailure.InvalidAuthorization", "The Credential is malformed."
        if sid not in self.keys:
            return "AuthFailure.SecretIdNotFound", "The SecretId is not found."
        try:
            ts = int(h.get("x-tc-timestamp", ""))
        except ValueError:
            return "AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing."
        if abs(time.time() - ts) > 300:
            return "AuthFailure.SignatureExpire", "The signature expired (check the clock)."
        if date != datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d") or service != "vod" \
                or terminator != "tc3_request" or fields["SignedHeaders"] != "content-type;host":
            return "AuthFailure.InvalidAuthorization", "The credential scope is wrong."
        want = expected_signature(self.keys[sid], content_type=h.get("content-type", ""), host=h.get("host", ""),
                                  body=req.body, timestamp=str(ts), date=date)
        if not hmac.compare_digest(want, fields["Signature"]):
            return "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
        self.signatures.append({"host": h.get("host"), "timestamp": ts, "body": req.body, "authorization": auth,
                                "action": h.get("x-tc-action")})
        return None

    # --- actions ----------------------------------------------------------------------
    def _CreateAigcVideoTask(self, body: dict) -> Reply:
        model, version = body.get("ModelName"), body.get("ModelVersion")
        if model not in VERSIONS:
            return error_reply("InvalidParameterValue.ModelName", f"Unknown ModelName {model}.")
        if version is not None and version not in VERSIONS[model]:
            return error_reply("InvalidParameterValue.ModelVersion", f"{model} has no version {version}.")
        files = body.get("FileInfos") or []
        if len(files) > 3:
            return error_reply("InvalidParameterValue.FileInfos", "FileInfos holds at most 3 files.")
        if "LastFrameUrl" in body:
            if not str(body["LastFrameUrl"]).startswith(("http://", "https://")):
                return error_reply("InvalidParameterValue.LastFrameUrl", "LastFrameUrl is not valid.")
            if len(files) != 1:
                return error_reply("InvalidParameterValue.FileInfos",
                                   "With LastFrameUrl, FileInfos holds exactly the first frame.")
        audio = (body.get("OutputConfig") or {}).get("AudioGeneration")
        if audio is not None and audio not in ("Enabled", "Disabled"):
            return error_reply("InvalidParameterValue.AudioGeneration", "AudioGeneration is Enabled or Disabled.")
        for info in files:
            if info.get("Type") == "Base64":
                data = str(info.get("Base64") or "")
                if data.startswith("data:"):
                    return error_reply("InvalidParameterValue.Base64", "Base64 must not carry a data: prefix.")
                try:
                    base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    return error_reply("InvalidParameterValue.Base64", "Base64 is not valid.")
            elif info.get("Type") == "Url":
                if not str(info.get("Url") or "").startswith(("http://", "https://")):
                    return error_reply("InvalidParameterValue.Url", "Url is not valid.")
            else:
                return error_reply("InvalidParameterValue.Type", "FileInfos.Type must be Url, Base64 or File.")
            if info.get("Usage", "FirstFrame") not in ("FirstFrame", "LastFrame", "Reference"):
                return error_reply("InvalidParameterValue.Usage", "Usage is not valid.")
        if len(str(body.get("Prompt") or "")) > 1000:
            return error_reply("InvalidParameterValue.Prompt", "Prompt is too long.")
        if "[[banned]]" in str(body.get("Prompt") or ""):
            return error_reply("InvalidParameter.ViolationContent", "The prompt violates the content policy.")
        session = body.get("SessionId") or ""
        with self._state_lock:
            if session and session in self.sessions:
                return error_reply("InvalidParameterValue.SessionId", "The SessionId was used within 3 days.")
            task_id = f"{self.sub_app_id or 1251000000}-AigcVideoTask-{uuid.uuid4().hex[:24]}"
            self.tasks[task_id] = {"body": body, "queries": 0, "created": time.time(), "session": session}
            if session:
                self.sessions[session] = task_id
            self.creates += 1
        if self.slow_after_create:
            time.sleep(self.slow_after_create)
        return Reply(200, {"Response": {"TaskId": task_id, "RequestId": str(uuid.uuid4())}})

    def _DescribeTaskDetail(self, body: dict) -> Reply:
        task = self.tasks.get(str(body.get("TaskId")))
        if task is None:
            return error_reply("ResourceNotFound.TaskNotExist", "The task does not exist.")
        with self._state_lock:
            task["queries"] += 1
            n = task["queries"]
        req = task["body"]
        prompt = str(req.get("Prompt") or "")
        aigc = {"TaskId": body["TaskId"], "ErrCode": 0, "ErrCodeExt": "", "Message": "", "Progress": 0,
                "Input": {"ModelName": req.get("ModelName"), "ModelVersion": req.get("ModelVersion"),
                          "Prompt": prompt},
                "Output": {"FileInfos": []}, "SessionId": task["session"], "SessionContext": req.get("SessionContext")}
        if n < self.steps:
            status = "WAITING" if n == 1 and self.steps > 2 else "PROCESSING"
            aigc.update(Status=status, Progress=0 if status == "WAITING" else int(100 * n / self.steps))
        elif "[[fail]]" in prompt:
            status = "FINISH"
            aigc.update(Status="FINISH", ErrCode=70000, ErrCodeExt="ModelGenerateFailed", Message="Generation failed.")
        elif "[[nsfw-output]]" in prompt:
            status = "FINISH"
            aigc.update(Status="FINISH", ErrCode=70000, ErrCodeExt="ContentModerationFailed",
                        Message="The output did not pass moderation.")
        else:
            status = "FINISH"
            sound = (req.get("OutputConfig") or {}).get("AudioGeneration") == "Enabled" or req.get("ModelName") == "OS"
            url = self.publish(self.video_with_sound() if sound else self.video(), f"{body['TaskId']}.mp4",
                               ttl=self.url_ttl)
            seconds = (req.get("OutputConfig") or {}).get("Duration") or 6
            aigc.update(Status="FINISH", Progress=100,
                        Output={"FileInfos": [{"FileUrl": url, "FileType": "mp4", "StorageMode": "Temporary"}],
                                "Usage": {"OutputSeconds": seconds}})
        return Reply(200, {"Response": {"TaskType": "AigcVideoTask", "Status": status,
                                        "CreateTime": _iso(task["created"]), "AigcVideoTask": aigc,
                                        "RequestId": str(uuid.uuid4())}})

    def _DescribeTasks(self, body: dict) -> Reply:
        limit = int(body.get("Limit") or 10)
        start = int(body.get("ScrollToken") or 0)
        rows = sorted(self.tasks.items(), key=lambda kv: kv[1]["created"], reverse=True)
        page = rows[start:start + limit]
        token = str(start + limit) if start + limit < len(rows) else ""
        return Reply(200, {"Response": {"TaskSet": [
            {"TaskId": tid, "TaskType": "AigcVideoTask", "Status": "PROCESSING", "CreateTime": _iso(t["created"]),
             "SessionId": t["session"], "SessionContext": t["body"].get("SessionContext", "")}
            for tid, t in page], "ScrollToken": token, "RequestId": str(uuid.uuid4())}})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
