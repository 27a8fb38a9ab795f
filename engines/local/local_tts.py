"""``local-tts``: offline Mandarin + English speech with Kokoro-82M v1.1-zh through sherpa-onnx.

sherpa-onnx is one wheel (onnxruntime inside, no torch) with its own Chinese front end (jieba +
the model's lexicons) and English from the model's lexicon, so nothing here needs the network
once the weights are on disk. The weights come through the model manager (Settings → Models →
Download: ``hub_id`` below, files listed in ``engines/local/download.py``) or a folder copied to
``<workspace>/models/local-tts/`` (or ``models: {local-tts: <folder>}`` in config.yaml).

Speech is made sentence by sentence: each sentence's start and end are kept in the output's
``timings``, progress advances per sentence and a cancel stops between (and inside) them.
It runs on the io lane: a line of speech never waits behind a video on the GPU.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import ClassVar

from core.errors import Cancelled, EngineError, NotAvailable
from engines.base import Engine, EngineRequest, Output, Reason, output_name
from engines.local.kokoro_files import KokoroFolder
from engines.local.weights import WeightsInfo, missing_packages
from engines.speech import SpeechParams, Voice, encode, resolve_voice, sentences, speech_output, voice_rows, write_wav

HUB_ID = "csukuangfj/kokoro-int8-multi-lang-v1_1"
PAUSE_S = 0.12  # silence between two sentences

VOICES: tuple[Voice, ...] = (
    Voice("zm_010", "中文男声 zm_010 · Mandarin male", "zh+en", "male", alias="narrator"),
    Voice("zm_009", "中文男声 zm_009 · Mandarin male", "zh+en", "male", alias="male"),
    Voice("zf_001", "中文女声 zf_001 · Mandarin female", "zh+en", "female", alias="female"),
    Voice("zf_002", "中文女声 zf_002 · Mandarin female", "zh+en", "female"),
    Voice("af_maple", "English female (Maple)", "en", "female"),
    Voice("af_sol", "English female (Sol)", "en", "female"),
    Voice("bf_vale", "British English female (Vale)", "en", "female"),
)


class LocalTtsParams(SpeechParams):
    MAX_TEXT: ClassVar[int] = 2000


class LocalTtsEngine(Engine):
    id = "local-tts"
    kind = "local"
    tasks = ("tts",)
    title = "Local speech · Kokoro 82M (中文 + English, offline)"
    needs = ("weights",)
    Params = LocalTtsParams
    hub_id: ClassVar[str | None] = HUB_ID

    def __init__(self, settings, secrets=None, cache=None, devices=None):
        super().__init__(settings, secrets)
        self.cache = cache
        self._speakers: tuple | None = None  # (model file stamp, its speaker names)

    @property
    def lane(self) -> str:
        return "io"  # CPU work of seconds: it must not queue behind GPU video jobs

    def voices(self) -> list[dict]:
        """The table's voices, then every other speaker the downloaded model holds."""
        rows = voice_rows(VOICES)
        listed = {v.id for v in VOICES}
        for name in self.native_voices():
            if name not in listed:
                gender = {"f": "female", "m": "male"}.get(name[1:2], "")
                language = {"z": "zh+en", "a": "en", "b": "en"}.get(name[:1], "")
                rows.append({"id": name, "name": name, "language": language, "gender": gender, "voice": name})
        return rows

    # --- weights --------------------------------------------------------------------
    def folder(self) -> Path:
        configured = self.settings.models.get(self.id)
        return Path(configured).expanduser() if configured else self.settings.models_dir / self.id

    def weights(self) -> WeightsInfo:
        folder = self.folder()
        present = not KokoroFolder.scan(folder).missing
        return WeightsInfo(folder if present else None, "settings" if self.settings.models.get(self.id) else
                           ("workspace" if present else "missing"), folder)

    def missing_files(self) -> list[str]:
        return KokoroFolder.scan(self.folder()).missing

    def available(self) -> tuple[bool, str]:
        if missing_packages("sherpa_onnx"):
            return False, Reason("install the sherpa-onnx package (pip install 'xianying-studio[speech]')",
                                 "请安装 sherpa-onnx 包（pip install 'xianying-studio[speech]'）")
        missing = self.missing_files()
        if missing:
            where = self.folder()
            return False, Reason(f"download the Kokoro voices in Settings → Models, or copy {HUB_ID} to {where} "
                                 f"(missing: {', '.join(missing)})",
                                 f"请在“设置 → 模型”中下载 Kokoro 语音模型，或把 {HUB_ID} 复制到 {where}"
                                 f"（缺少：{', '.join(missing)}）")
        return True, ""

    # --- run ------------------------------------------------------------------------
    def load(self) -> "_Loaded":
        """The sherpa-onnx ``OfflineTts`` with its ``KokoroMeta``, kept warm in the shared pipeline cache."""
        folder = KokoroFolder.scan(self.folder())
        meta = folder.check()  # everything sherpa-onnx would exit the process over
        threads = max(1, min(4, (os.cpu_count() or 2) // 2))

        def build():
            import sherpa_onnx

            kokoro = sherpa_onnx.OfflineTtsKokoroModelConfig(
                model=str(folder.model), voices=str(folder.voices), tokens=str(folder.tokens),
                lexicon=",".join(str(p) for p in folder.lexicons))
            config = sherpa_onnx.OfflineTtsConfig(
                model=sherpa_onnx.OfflineTtsModelConfig(kokoro=kokoro, num_threads=threads, provider="cpu"),
                rule_fsts=",".join(str(p) for p in folder.rules), max_num_sentences=1)
            if not config.validate():
                raise EngineError(f"sherpa-onnx refused the model files in {folder.path}.",
                                  f"sherpa-onnx 无法使用 {folder.path} 中的模型文件。")
            return _Loaded(sherpa_onnx.OfflineTts(config), meta)

        key = ("local-tts", str(folder.model), folder.model.stat().st_mtime_ns, threads)
        return self.cache.get(key, build) if self.cache is not None else build()

    def native_voices(self) -> list[str]:
        """The speaker names the downloaded model holds ([] when it is absent or unreadable); read
        again only when the model file changes (``/engines`` asks often)."""
        folder = KokoroFolder.scan(self.folder())
        if folder.missing:
            return []
        try:
            stamp = (str(folder.model), folder.model.stat().st_mtime_ns, folder.voices.stat().st_size)
            if self._speakers is None or self._speakers[0] != stamp:
                self._speakers = (stamp, folder.check().speakers)
            return list(self._speakers[1])
        except (EngineError, OSError):
            return []

    def check(self, request: EngineRequest) -> None:
        voice = request.params.voice.strip()
        if any(voice in (v.id, v.alias) for v in VOICES) or voice in self.native_voices():
            return
        resolve_voice(voice, VOICES, self.id)  # raises, naming the voices there are

    def sid(self, voice: str, speakers: list[str]) -> int:
        voice = voice.strip()
        if voice in speakers and not any(voice == v.alias for v in VOICES):
            return speakers.index(voice)
        chosen = resolve_voice(voice, VOICES, self.id).id
        if chosen in speakers:
            return speakers.index(chosen)
        prefix = chosen[:3]  # this model lacks that speaker: the first of the same kind (zm_, zf_, af_)
        return next((i for i, name in enumerate(speakers) if name.startswith(prefix)), 0)

    def run(self, request: EngineRequest, progress, cancelled) -> list[Output]:
        import numpy as np

        if self.missing_files():
            raise NotAvailable(*_missing_messages(self.folder(), self.missing_files()))
        p: LocalTtsParams = request.params
        parts = sentences(p.text) or [p.text]
        progress(0, len(parts) + 1)
        loaded = self.load()
        meta = loaded.meta
        sid = self.sid(p.voice, meta.speakers)
        rate = loaded.tts.sample_rate
        pause = np.zeros(int(PAUSE_S * rate), dtype=np.float32)
        chunks, timings, t = [], [], 0.0
        for i, sentence in enumerate(parts):
            if cancelled():
                raise Cancelled()
            with loaded.lock:  # one generate at a time per loaded model (io workers are threads)
                audio = loaded.tts.generate(sentence, sid=sid, speed=float(p.speed),
                                            callback=lambda samples, frac: 0 if cancelled() else 1)
            if cancelled():
                raise Cancelled()
            samples = np.asarray(audio.samples, dtype=np.float32)
            if samples.size == 0:
                continue  # nothing the lexicons know (a lone symbol): no sound for it
            if chunks:
                chunks.append(pause)
                t += len(pause) / rate
            start = t
            t += samples.size / rate
            chunks.append(samples)
            timings.append([round(start, 3), round(t, 3), sentence])
            progress(i + 1, len(parts) + 1)
        if not chunks:
            raise EngineError("Nothing in this text can be spoken: it has no Chinese or English words the voice "
                              "knows.", "这段文字中没有可朗读的中文或英文词语。")
        wav = write_wav(request.workdir / output_name(self.id, 0, "wav"), np.concatenate(chunks), rate)
        out = encode(wav, p.format)
        progress(len(parts) + 1, len(parts) + 1)
        native = meta.speakers[sid] if sid < len(meta.speakers) else str(sid)
        return [speech_output(out, timings, {"voice": native, "sample_rate": rate, "text": p.text})]


class _Loaded:
    """What the pipeline cache keeps: no ``components``, so it counts 0 bytes (about 0.1-0.3 GB in RAM)."""

    def __init__(self, tts, meta):
        self.tts, self.meta = tts, meta
        self.lock = threading.Lock()


def _missing_messages(folder: Path, missing: list[str]) -> tuple[str, str]:
    return (f"local-tts has no voice model yet: download it in Settings → Models, or copy {HUB_ID} to {folder} "
            f"(missing: {', '.join(missing)}).",
            f"local-tts 还没有语音模型：请在“设置 → 模型”中下载，或把 {HUB_ID} 复制到 {folder}（缺少：{', '.join(missing)}）。")
