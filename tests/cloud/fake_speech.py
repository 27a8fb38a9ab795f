"""Loopback fakes of the two cloud speech APIs, speaking their real protocols.

``FakeQwenTts``   DashScope ``POST /api/v1/services/aigc/multimodal-generation/generation``: Bearer
                  key checked; ``model`` (qwen3-tts-flash | qwen-tts), ``input.text`` (≤ 600
                  characters), ``input.voice`` (a system voice) and ``language_type`` validated; the
                  answer holds ``output.audio.url`` (a signed, expiring link to a 24 kHz WAV on this
                  server), ``request_id`` and ``usage`` (``characters`` for qwen3, tokens for qwen-tts).
                  Errors are DashScope bodies ``{request_id, code, message}``; ``[[banned]]`` in the text
                  → 400 ``DataInspectionFailed``.
``FakeTencentTts`` Tencent Cloud ``TextToVoice`` (2019-08-23): every request's TC3 signature
                  (service ``tts``) is recomputed from the secret key and checked (the VOD fake's
                  independent signer); Text ≤ 150 characters, SessionId, VoiceType, Codec, SampleRate,
                  Speed in [-2, 6] validated; the audio comes back base64 in ``Response.Audio`` with
                  per-character ``Subtitles`` (ms) when ``EnableSubtitle``. Errors: HTTP 200 + Error.

The audio is a sine tone of ``SECONDS_PER_CHAR`` per spoken character (divided by the speed).
"""

from __future__ import annotations

import base64
import hmac
import io
import math
import struct
import time
import uuid
import wave
from datetime import datetime, timezone

from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY, error_reply, expected_signature
from tests.cloud.fakeserver import FakeServer, Reply, Req

API_KEY = "sk-fake-dashscope-speech-0001"
SECONDS_PER_CHAR = 0.2
QWEN_VOICES = {"Cherry", "Serena", "Ethan", "Chelsie", "Dylan", "Jada", "Sunny"}
TENCENT_VOICES = {101001, 101002, 101004, 101010, 101011, 101013, 101050, 101051}
SPEED_RATES = {-2: 0.6, -1: 0.8, 0: 1.0, 1: 1.2, 2: 1.5, 6: 2.5}


def spoken(text: str) -> list[str]:
    return [ch for ch in text if ch.isalnum()]


def tone(seconds: float, rate: int) -> bytes:
    frames = max(1, int(seconds * rate))
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / rate))) for i in range(frames))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def mp3_of(wav: bytes) -> bytes:
    import subprocess
    import tempfile
    from pathlib import Path

    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "a.wav", Path(tmp) / "a.mp3"
        src.write_bytes(wav)
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), "-codec:a",
                        "libmp3lame", str(dst)], check=True)
        return dst.read_bytes()


class FakeQwenTts(FakeServer):
    PATH = "/api/v1/services/aigc/multimodal-generation/generation"

    def __init__(self):
        super().__init__()
        self.api_key = API_KEY
        self.calls = 0  # syntheses made (what DashScope would bill)

    @property
    def base(self) -> str:
        return self.url + "/api/v1"

    def route(self, req: Req) -> str:
        if req.path.startswith("/files/"):
            return "download"
        return "tts" if req.method == "POST" and req.path == self.PATH else "other"

    def error(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"request_id": str(uuid.uuid4()), "code": code, "message": message})

    def handle(self, req: Req, route: str) -> Reply:
        if route != "tts":
            return Reply(404, {"code": "NotFound", "message": "not found"})
        if req.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(401, "InvalidApiKey", "Invalid API-key provided.")
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return self.error(400, "InvalidParameter", "input is required.")
        model, spec = body.get("model"), body["input"]
        text, voice = spec.get("text"), spec.get("voice")
        if model not in ("qwen3-tts-flash", "qwen-tts"):
            return self.error(400, "InvalidParameter", f"Model {model} does not exist.")
        if not isinstance(text, str) or not text.strip() or len(text) > 600:
            return self.error(400, "InvalidParameter", "input.text must be 1 to 600 characters.")
        if voice not in QWEN_VOICES:
            return self.error(400, "InvalidParameter", f"Voice {voice} is not supported.")
        if "language_type" in spec and (model == "qwen-tts" or spec["language_type"] not in
                                        ("Auto", "Chinese", "English")):
            return self.error(400, "InvalidParameter", "language_type is not valid for this model.")
        if "[[banned]]" in text:
            return self.error(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
        self.calls += 1
        audio_id = "audio_" + uuid.uuid4().hex
        url = self.publish(tone(SECONDS_PER_CHAR * len(spoken(text)), 24000), f"{audio_id}.wav", ttl=86400)
        n = len(text)
        usage = {"characters": n} if model.startswith("qwen3") else \
            {"input_tokens": n, "output_tokens": 50 * n, "total_tokens": 51 * n}
        return Reply(200, {"request_id": str(uuid.uuid4()), "usage": usage, "output": {
            "text": None, "finish_reason": "stop", "choices": None,
            "audio": {"data": "", "url": url, "id": audio_id, "expires_at": int(time.time()) + 86400}}})


class FakeTencentTts(FakeServer):
    def __init__(self):
        super().__init__()
        self.keys = {SECRET_ID: SECRET_KEY}
        self.calls = 0
        self.bodies: list[dict] = []

    @property
    def endpoint(self) -> str:
        return self.url + "/"

    def route(self, req: Req) -> str:
        if req.method == "POST" and req.path == "/":
            return req.headers.get("x-tc-action", "missing-action")
        return "other"

    def verify(self, req: Req) -> tuple[str, str] | None:
        h = req.headers
        if h.get("x-tc-version") != "2019-08-23":
            return "InvalidParameterValue.Version", "X-TC-Version must be 2019-08-23."
        algorithm, _, rest = h.get("authorization", "").partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        if algorithm != "TC3-HMAC-SHA256" or not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
            return "AuthFailure.InvalidAuthorization", "The Authorization header is malformed."
        try:
            sid, date, service, terminator = fields["Credential"].split("/")
            ts = int(h.get("x-tc-timestamp", ""))
        except ValueError:
            return "AuthFailure.InvalidAuthorization", "The Credential or timestamp is malformed."
        if sid not in self.keys:
            return "AuthFailure.SecretIdNotFound", "The SecretId is not found."
        if abs(time.time() - ts) > 300:
            return "AuthFailure.SignatureExpire", "The signature expired (check the clock)."
        if date != datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d") or service != "tts" \
                or terminator != "tc3_request" or fields["SignedHeaders"] != "content-type;host":
            return "AuthFailure.InvalidAuthorization", "The credential scope is wrong."
        want = expected_signature(self.keys[sid], content_type=h.get("content-type", ""), host=h.get("host", ""),
                                  body=req.body, timestamp=str(ts), date=date, service="tts")
        if not hmac.compare_digest(want, fields["Signature"]):
            return "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
        return None

    def handle(self, req: Req, route: str) -> Reply:
        if route == "other":
            return Reply(404, "not found")
        problem = self.verify(req)
        if problem is not None:
            return error_reply(*problem)
        if route != "TextToVoice":
            return error_reply("InvalidAction", f"The action {route} does not exist.")
        body = req.json()
        if not isinstance(body, dict):
            return error_reply("InvalidParameter", "The request body is not a JSON object.")
        self.bodies.append(body)
        text, session = body.get("Text"), body.get("SessionId")
        speed = body.get("Speed", 0)
        if not isinstance(text, str) or not text or len(text) > 150:
            return error_reply("InvalidParameterValue.TextTooLong", "Text must be 1 to 150 characters.")
        if not isinstance(session, str) or not session:
            return error_reply("MissingParameter", "SessionId is required.")
        if body.get("VoiceType") not in TENCENT_VOICES:
            return error_reply("InvalidParameterValue.VoiceType", "VoiceType is not supported.")
        if body.get("Codec", "wav") not in ("wav", "mp3", "pcm") or body.get("SampleRate", 16000) not in \
                (8000, 16000, 24000):
            return error_reply("InvalidParameterValue", "Codec or SampleRate is not valid.")
        if not isinstance(speed, (int, float)) or not -2 <= speed <= 6:
            return error_reply("InvalidParameterValue.Speed", "Speed must be in [-2, 6].")
        self.calls += 1
        keys = sorted(SPEED_RATES)
        rate = next(SPEED_RATES[k] for k in reversed(keys) if k <= speed) if speed not in SPEED_RATES else \
            SPEED_RATES[speed]
        step_ms = int(1000 * SECONDS_PER_CHAR / rate)
        subtitles, t = [], 0
        for index, ch in enumerate(text):
            if not ch.isalnum():
                continue
            subtitles.append({"Text": ch, "BeginTime": t, "EndTime": t + step_ms, "BeginIndex": index,
                              "EndIndex": index + 1, "Phoneme": ""})
            t += step_ms
        wav = tone(t / 1000, body.get("SampleRate", 16000))
        audio = mp3_of(wav) if body.get("Codec") == "mp3" else wav
        resp = {"Audio": base64.b64encode(audio).decode(), "SessionId": session, "RequestId": str(uuid.uuid4())}
        if body.get("EnableSubtitle"):
            resp["Subtitles"] = subtitles
        return Reply(200, {"Response": resp})
