"""``dashscope-tts``: Alibaba DashScope (Model Studio) Qwen-TTS, with the key the Wan engine uses.

``POST {base}/services/aigc/multimodal-generation/generation`` with
``{"model", "input": {"text", "voice", "language_type"}}`` answers at once:
``{"output": {"finish_reason", "audio": {"url", "id", "expires_at"}}, "usage": {...}, "request_id"}``.
The audio is a 24 kHz WAV behind a link that expires (24 h), downloaded right away. Qwen-TTS has
no rate parameter: a speed other than 1.0 is applied afterwards (ffmpeg ``atempo``, pitch kept).
The usage block (``characters`` for qwen3-tts, tokens for qwen-tts) goes to the usage ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from core.errors import ProviderError
from engines.base import EngineRequest
from engines.cloud import http
from engines.cloud.dashscope import DEFAULT_BASE, KEY, VENDOR, error_of
from engines.cloud.keyed import KeyedCloudEngine
from engines.cloud.speech_call import SpeechCall, Spoken, download_audio, retime
from engines.speech import SpeechParams, Voice, resolve_voice, voice_rows

PATH = "/services/aigc/multimodal-generation/generation"

VOICES: tuple[Voice, ...] = (
    Voice("Serena", "苏瑶 Serena", "zh+en", "female", alias="narrator"),
    Voice("Ethan", "晨煦 Ethan", "zh+en", "male", alias="male"),
    Voice("Cherry", "芊悦 Cherry", "zh+en", "female", alias="female"),
    Voice("Chelsie", "千雪 Chelsie", "zh+en", "female"),
    Voice("Dylan", "北京话 Dylan", "zh", "male"),
    Voice("Jada", "上海话 Jada", "zh", "female"),
    Voice("Sunny", "四川话 Sunny", "zh", "female"),
)


class DashScopeTtsParams(SpeechParams):
    MAX_TEXT: ClassVar[int] = 600

    model: Literal["qwen3-tts-flash", "qwen-tts"] = Field("qwen3-tts-flash", description="Qwen-TTS model")
    language_type: Literal["Auto", "Chinese", "English"] = Field(
        "Auto", description="Language of the text (qwen3-tts-flash; Auto lets the model tell)")


class DashScopeTtsEngine(SpeechCall, KeyedCloudEngine, vendor=VENDOR, keys=(KEY,),
                         base_env="DASHSCOPE_HTTP_BASE_URL", default_base=DEFAULT_BASE,
                         content_type="application/json"):
    id = "dashscope-tts"
    title = "DashScope Qwen-TTS (speech)"
    tasks = ("tts",)
    Params = DashScopeTtsParams
    can_cancel = False

    def voices(self) -> list[dict]:
        return voice_rows(VOICES)

    def check(self, request: EngineRequest) -> None:
        resolve_voice(request.params.voice, VOICES, self.id)

    def body(self, p: DashScopeTtsParams) -> dict:
        spoken: dict = {"text": p.text, "voice": resolve_voice(p.voice, VOICES, self.id).id}
        if p.model.startswith("qwen3"):
            spoken["language_type"] = p.language_type
        return {"model": p.model, "input": spoken}

    def synthesize(self, request: EngineRequest, dest: Path) -> Spoken:
        p: DashScopeTtsParams = request.params
        key = self.require_key()
        answer = http.with_retries(lambda: http.send_json(
            "POST", self.base_url() + PATH, vendor=VENDOR, headers=self.auth_headers(), json=self.body(p),
            error_of=lambda r: error_of(r, key), timeout=http.timeouts(read=120.0)), what="Qwen-TTS")
        output = answer.get("output") if isinstance(answer.get("output"), dict) else {}
        audio = output.get("audio") if isinstance(output.get("audio"), dict) else {}
        url = audio.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            code = answer.get("code") or output.get("finish_reason") or "no_audio"
            raise ProviderError(f"{VENDOR} answered without audio ({code}: {http.scrub(answer.get('message'), key)}).",
                                f"{VENDOR} 没有返回音频（{code}）。", retryable=False, vendor_code=str(code))
        path = retime(download_audio(url, dest, VENDOR), p.speed)
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        request_id = str(answer.get("request_id") or audio.get("id") or request.job_id)
        info = {"usage": usage, "model": p.model, "voice": self.body(p)["input"]["voice"], "request_id": request_id}
        return Spoken(path=path, remote_id=request_id, timings=None, info=info)
