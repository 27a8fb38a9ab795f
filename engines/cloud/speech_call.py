"""Cloud speech vendors answer one request with the audio itself (no task to poll): how such a call
fits the cloud contract's create / poll / collect, so speech shares the queue, cancel, retry,
outputs folder and usage ledger of every cloud job.

``SpeechCall`` is a mixin placed before ``KeyedCloudEngine``. A subclass implements

``synthesize(request, dest) -> Spoken``   one vendor call; the audio written to ``dest`` (a path
                                           without suffix: add the real one), its timings and info

``start`` runs it and notes the result in the engine's create journal (``<workspace>/cloud/<id>/``)
before it returns, so a studio stopped right after the call finds the audio there and does not pay
twice; ``poll`` answers from that note at once (``poll_delay`` is 0); ``collect`` moves the audio into
the job's folder and converts it to the requested format.

``download_audio(url, dest, vendor)``   a result URL into a file (expired links are not retried)
``retime(path, speed)``                 the audio played faster or slower (ffmpeg ``atempo``), for
                                        vendors without a rate parameter
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.errors import EngineError, ProviderError
from engines.base import EngineRequest, Output, RemoteState, output_name
from engines.cloud import http
from engines.speech import encode, speech_output
from core.platform import no_window, replace_with_retry


@dataclass
class Spoken:
    path: Path  # the audio as the vendor sent it (.wav or .mp3)
    remote_id: str  # the vendor's request id
    timings: list | None = None  # [[start_s, end_s, text], ...]
    info: dict = field(default_factory=dict)  # usage, voice, model... (what the ledger reads)


class SpeechCall:
    journal: object
    id: str

    def synthesize(self, request: EngineRequest, dest: Path) -> Spoken:
        raise NotImplementedError

    def start(self, request: EngineRequest) -> str:
        note = self.journal.load(request.job_id)
        if note.get("file") and Path(note["file"]).is_file():
            return note["remote_id"]  # said and paid for before a restart: keep it
        self.journal.root.mkdir(parents=True, exist_ok=True)
        _sweep_audio(self.journal.root)
        spoken = self.synthesize(request, self.journal.root / f"{request.job_id}.audio")
        self.journal.save(request.job_id, remote_id=spoken.remote_id, file=str(spoken.path),
                          timings=spoken.timings, info=spoken.info)
        return spoken.remote_id

    def poll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        note = self.journal.load(request.job_id)
        if not note.get("file") or not Path(note["file"]).is_file():
            return RemoteState("failed", "lost", error=ProviderError(
                "The speech was made but its file is gone from the studio's cloud folder; retry the job.",
                "语音已生成，但文件已从工作室的云端缓存中丢失，请重试该任务。", retryable=False, vendor_code="lost"))
        return RemoteState("succeeded", "done", progress=100.0, info=dict(note.get("info") or {}))

    def collect(self, state: RemoteState, request: EngineRequest) -> list[Output]:
        note = self.journal.load(request.job_id)
        source = Path(note["file"])
        target = request.workdir / output_name(self.id, 0, source.suffix.lstrip(".") or "wav")
        shutil.copyfile(source, target)
        fmt = request.params.format
        if fmt == "wav" and target.suffix != ".wav":
            target = _to_wav(target)
        elif fmt == "mp3" and target.suffix != ".mp3":
            target = encode(target, "mp3")
        out = speech_output(target, note.get("timings"), {k: v for k, v in (note.get("info") or {}).items()
                                                          if k in ("voice", "model", "request_id")})
        source.unlink(missing_ok=True)
        self.journal.clear(request.job_id)
        return [out]

    def poll_delay(self, polls: int) -> float:
        return 0.0


def _sweep_audio(root: Path, keep_s: float = 7 * 24 * 3600) -> None:
    """Audio of jobs cancelled after their call (never collected) goes after a week, like the notes."""
    import time

    cutoff = time.time() - keep_s
    for path in root.glob("*.audio.*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue


def _ffmpeg(args: list[str], what: str) -> None:
    import imageio_ffmpeg

    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
                          capture_output=True, text=True, creationflags=no_window())
    if done.returncode != 0:
        raise EngineError(f"ffmpeg could not {what} (exit {done.returncode}): {done.stderr.strip()[-300:]}",
                          f"ffmpeg 处理音频失败（退出码 {done.returncode}）。")


def _to_wav(path: Path) -> Path:
    wav = path.with_suffix(".wav")
    _ffmpeg(["-i", str(path), "-c:a", "pcm_s16le", str(wav)], "convert the audio to WAV")
    path.unlink(missing_ok=True)
    return wav


def retime(path: Path, speed: float) -> Path:
    """The same file, ``speed`` times faster (0.5-2.0, pitch kept)."""
    if abs(speed - 1.0) < 1e-3:
        return path
    tmp = path.with_name(path.stem + ".tempo" + path.suffix)
    _ffmpeg(["-i", str(path), "-filter:a", f"atempo={speed:.4f}", str(tmp)], "change the speaking rate")
    replace_with_retry(tmp, path)
    return path


def _expired(status: int, vendor: str) -> ProviderError:
    return ProviderError(f"{vendor}'s audio link has expired or was refused (HTTP {status}); run the job again.",
                         f"{vendor} 的音频链接已过期或被拒绝（HTTP {status}），请重新运行任务。",
                         retryable=False, vendor_code="url_expired", http_status=status)


def download_audio(url: str, dest: Path, vendor: str) -> Path:
    """Stream ``url`` to ``dest`` (its suffix taken from the URL's path: .wav or .mp3), with retries."""
    suffix = ".mp3" if httpx.URL(url).path.lower().endswith(".mp3") else ".wav"
    target = dest.with_suffix(suffix)
    tmp = dest.with_suffix(suffix + ".part")

    def once() -> Path:
        try:
            with http.get_client().stream("GET", url, timeout=http.timeouts()) as response:
                if response.status_code in http.EXPIRED_STATUS:
                    raise _expired(response.status_code, vendor)
                if response.status_code >= 400:
                    raise http.http_error(vendor, response.status_code)
                with open(tmp, "wb") as fh:
                    for chunk in response.iter_bytes(1 << 16):
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise ProviderError(f"The audio download was interrupted ({type(exc).__name__}).",
                                f"音频下载中断（{type(exc).__name__}）。", retryable=True,
                                vendor_code="download") from exc
        head = tmp.read_bytes()[:4]
        if not (head == b"RIFF" or head[:3] == b"ID3" or head[:1] == b"\xff"):
            raise ProviderError(f"{vendor}'s audio link did not give an audio file.",
                                f"{vendor} 的音频链接返回的不是音频文件。", retryable=True, vendor_code="not_audio")
        replace_with_retry(tmp, target)
        return target

    return http.with_retries(once, what=f"{vendor} audio download")
