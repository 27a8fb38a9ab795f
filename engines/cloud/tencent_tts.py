"""``tencent-tts``: Tencent Cloud speech synthesis (TextToVoice, API 2019-08-23), with the
SecretId / SecretKey the VOD engine uses.

``POST https://tts.tencentcloudapi.com/`` with ``X-TC-Action: TextToVoice``, TC3-HMAC-SHA256 signed
(service ``tts``; the signer is VOD's). The body: ``Text`` (at most 150 Chinese characters),
``SessionId``, ``VoiceType``, ``Codec`` (wav | mp3), ``SampleRate``, ``Speed`` (-2..6: 0.6x..2.5x),
``EnableSubtitle``. The answer carries the audio as base64 in ``Response.Audio`` and, with
subtitles on, one ``{Text, BeginTime, EndTime, BeginIndex, EndIndex}`` per character (ms): they are
kept as the output's timings. Errors are HTTP 200 + ``Response.Error``, mapped like VOD's.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from core.errors import ProviderError
from engines.base import EngineRequest
from engines.cloud import http
from engines.cloud.keyed import KeyedCloudEngine
from engines.cloud.speech_call import SpeechCall, Spoken
from engines.cloud.tencent_vod import RETRYABLE, api_error, tc3_authorization
from engines.speech import SpeechParams, Voice, resolve_voice, voice_rows

VENDOR = "Tencent Cloud TTS"
API_VERSION = "2019-08-23"
DEFAULT_ENDPOINT = "https://tts.tencentcloudapi.com/"
# Tencent's Speed steps: -2 = 0.6x, -1 = 0.8x, 0 = 1.0x, 1 = 1.2x, 2 = 1.5x, 6 = 2.5x (linear between)
SPEED_STEPS = ((0.6, -2.0), (0.8, -1.0), (1.0, 0.0), (1.2, 1.0), (1.5, 2.0), (2.5, 6.0))

VOICES: tuple[Voice, ...] = (
    Voice("101013", "智辉 · 新闻男声", "zh", "male", alias="narrator"),
    Voice("101004", "智云 · 通用男声", "zh", "male", alias="male"),
    Voice("101001", "智瑜 · 情感女声", "zh", "female", alias="female"),
    Voice("101002", "智聆 · 通用女声", "zh", "female"),
    Voice("101010", "智华 · 通用男声", "zh", "male"),
    Voice("101011", "智燕 · 新闻女声", "zh", "female"),
    Voice("101050", "WeJack · English male", "en", "male"),
    Voice("101051", "WeRose · English female", "en", "female"),
)


def tencent_speed(speed: float) -> float:
    """A rate (1.0 = normal) on Tencent's Speed scale."""
    for (r0, s0), (r1, s1) in zip(SPEED_STEPS, SPEED_STEPS[1:]):
        if speed <= r1:
            return round(s0 + (max(speed, r0) - r0) * (s1 - s0) / (r1 - r0), 2)
    return SPEED_STEPS[-1][1]


def tts_error(code: str, message: str, secrets: tuple = ()) -> ProviderError:
    """``Response.Error`` → ProviderError: credentials, clock and busy codes as VOD maps them (its words,
    this vendor's name); a refused text or voice says what to change."""
    if code.startswith(("AuthFailure", "UnauthorizedOperation", *RETRYABLE)):
        mapped = api_error(code, message, secrets)
        return ProviderError(mapped.en.replace("Tencent Cloud VOD", VENDOR), mapped.zh.replace("Tencent Cloud VOD", VENDOR),
                             retryable=mapped.retryable, vendor_code=code)
    message = http.scrub(message, *secrets)
    return ProviderError(f"{VENDOR} refused the request ({code}: {message}). Check the text (at most 150 characters), "
                         "the voice (VoiceType) and the sample rate.",
                         f"{VENDOR} 拒绝了请求（{code}：{message}）。请检查文字（最多 150 字）、音色（VoiceType）和采样率。",
                         retryable=False, vendor_code=code)


class TencentTtsParams(SpeechParams):
    MAX_TEXT: ClassVar[int] = 150

    sample_rate: Literal[16000, 24000] = Field(16000, description="Sample rate (24000 only for some voices)")
    primary_language: Literal["zh", "en"] = Field("zh", description="Main language of the text")


class TencentTtsEngine(SpeechCall, KeyedCloudEngine, vendor=VENDOR, base_env="TENCENTCLOUD_TTS_ENDPOINT",
                       keys=("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"), default_base=DEFAULT_ENDPOINT):
    id = "tencent-tts"
    title = "Tencent Cloud TTS (speech, per-character timings)"
    tasks = ("tts",)
    Params = TencentTtsParams
    can_cancel = False

    def voices(self) -> list[dict]:
        return voice_rows(VOICES)

    def check(self, request: EngineRequest) -> None:
        voice = request.params.voice.strip()
        if not voice.isdigit():  # any numeric VoiceType Tencent offers (premium ones too) is passed on
            resolve_voice(voice, VOICES, self.id)

    def voice_type(self, voice: str) -> int:
        voice = voice.strip()
        return int(voice) if voice.isdigit() else int(resolve_voice(voice, VOICES, self.id).id)

    def payload(self, p: TencentTtsParams, session: str) -> dict:
        return {"Text": p.text, "SessionId": session, "VoiceType": self.voice_type(p.voice), "Codec": p.format,
                "SampleRate": p.sample_rate, "Speed": tencent_speed(p.speed), "ModelType": 1, "Volume": 0,
                "PrimaryLanguage": 1 if p.primary_language == "zh" else 2, "EnableSubtitle": True}

    def call(self, action: str, payload: dict) -> dict:
        """One signed call; ``Response`` or the mapped ProviderError (the VOD engine's mapping)."""
        sid, key = self.require_keys()
        url = self.base_url() + "/"
        host = urlsplit(url).netloc
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "Host": host, "X-TC-Action": action,
                   "X-TC-Timestamp": str(ts), "X-TC-Version": API_VERSION,
                   "Authorization": tc3_authorization(sid, key, host=host, body=body, timestamp=ts, service="tts")}
        try:
            response = http.get_client().post(url, content=body, headers=headers, timeout=http.timeouts(read=120.0))
        except httpx.HTTPError as exc:
            raise http.transport_error(VENDOR, exc) from exc
        if response.status_code >= 400:
            raise http.http_error(VENDOR, response.status_code, retry_after=http.retry_after_of(response))
        resp = http.error_body(response).get("Response")
        if not isinstance(resp, dict):
            raise ProviderError(f"{VENDOR} answered {action} with something that is not its JSON; try again later.",
                                f"{VENDOR} 对 {action} 的响应不是有效 JSON，请稍后再试。", retryable=True,
                                vendor_code="bad_json")
        err = resp.get("Error")
        if isinstance(err, dict):
            raise tts_error(str(err.get("Code") or "UnknownError"), str(err.get("Message") or ""), (sid, key))
        return resp

    def synthesize(self, request: EngineRequest, dest: Path) -> Spoken:
        p: TencentTtsParams = request.params
        session = uuid.uuid5(uuid.NAMESPACE_URL, f"xianying:{request.job_id}:{request.attempt}").hex
        resp = http.with_retries(lambda: self.call("TextToVoice", self.payload(p, session)), what="TextToVoice")
        try:
            audio = base64.b64decode(resp.get("Audio") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProviderError(f"{VENDOR} sent audio that is not valid base64.", f"{VENDOR} 返回的音频不是有效的 base64。",
                                retryable=True, vendor_code="bad_audio") from exc
        if not audio:
            raise ProviderError(f"{VENDOR} answered without audio.", f"{VENDOR} 没有返回音频。", retryable=True,
                                vendor_code="no_audio")
        path = dest.with_suffix("." + p.format)
        path.write_bytes(audio)
        timings = [[round(float(s["BeginTime"]) / 1000, 3), round(float(s["EndTime"]) / 1000, 3), str(s["Text"])]
                   for s in resp.get("Subtitles") or [] if isinstance(s, dict)
                   and isinstance(s.get("BeginTime"), (int, float)) and isinstance(s.get("EndTime"), (int, float))]
        request_id = str(resp.get("RequestId") or session)
        info = {"usage": {"characters": len(p.text)}, "voice": str(self.voice_type(p.voice)),
                "request_id": request_id, "session_id": resp.get("SessionId") or session}
        return Spoken(path=path, remote_id=request_id, timings=timings or None, info=info)
