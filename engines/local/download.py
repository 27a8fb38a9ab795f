"""Model downloads from the Hugging Face hub (or a mirror) into the engines' weight folders.

``ModelDownloads`` (one per studio) runs at most one download per engine, each in a thread, and
reports ``status()`` for the Settings page. Files go where ``find_weights`` looks first after a
configured folder: ``settings.models[id]`` or ``<workspace>/models/<id>/``, so an engine turns
available as soon as its download ends, without a restart.

How a download goes: the repo's file list at one commit (hub API), filtered by the engine's
row in ``PLANS``; each file streams into ``<folder>/.cache/xianying/<path>.<etag>.part`` (an
HTTP ``Range`` request continues a part left by a network drop, a cancel or a closed app), is
checked against the hub's hash (LFS sha256, else the git blob sha1) and renamed into place.
The marker files (``model_index.json``) come last, so a half-downloaded folder never counts.

huggingface_hub 2.4's ``snapshot_download`` is not used for the bytes: it writes each file to a
process-unique temporary name and deletes it on any failure, so a cancelled or interrupted
multi-GB file would start again from zero. The hub client is still used for the API calls, the
URLs, the auth headers, its HTTP session and its error types. hf-xet is never involved.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket as socket_module
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import AppError, Cancelled, ConfigError, EngineError, ValidationError
from core.platform import replace_with_retry

from .hub_files import (
    RemoteFile,
    complete,
    digest,
    disk_full_error,
    existing_parent,
    explain,
    gated_error,
    offline,
    part_path,
    part_size,
    select_files,
    size_of,
    tidy,
    transient,
)

log = logging.getLogger(__name__)

OFFICIAL_HUB = "https://huggingface.co"

# Never fetched: other runtimes' formats, half-precision duplicates, single-file checkpoints' kin.
IGNORE = ("*.onnx", "*.onnx_data", "*.msgpack", "*.h5", "*openvino*", "*.fp16.*", "*.ckpt", "*.pth", "*.gguf",
          "*.md", ".gitattributes")


@dataclass(frozen=True)
class RepoPart:
    """One repository an engine needs. ``repo_id`` None = the engine's ``hub_id``; ``folder`` None
    = the engine's own weights folder (else another engine's); ``only_if_missing``: skipped when
    the engine already finds these weights somewhere."""

    allow: tuple[str, ...]
    repo_id: str | None = None
    folder: str | None = None
    markers: tuple[str, ...] = ("model_index.json",)
    only_if_missing: bool = False
    ignore: tuple[str, ...] = IGNORE

    def select(self, entries: list[RemoteFile]) -> list[RemoteFile]:
        return select_files(entries, self.allow, self.ignore, self.markers)


def diffusers_part(*components: str, **kw) -> RepoPart:
    return RepoPart(("model_index.json", *(f"{c}/*" for c in components)), **kw)


WAN = ("scheduler", "text_encoder", "tokenizer", "transformer", "vae")
SDXL = ("scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "vae")
PLANS: dict[str, tuple[RepoPart, ...]] = {
    "wan2.1-t2v-1.3b": (diffusers_part(*WAN),),
    "wan2.1-i2v-480p": (diffusers_part(*WAN, "image_encoder", "image_processor"),),
    "wan2.1-i2v-720p": (diffusers_part(*WAN, "image_encoder", "image_processor"),),
    "sdxl": (diffusers_part(*SDXL),),
    "svd-xt": (diffusers_part("feature_extractor", "image_encoder", "scheduler", "unet", "vae"),),
    "sdxl-instantid": (
        RepoPart(("ControlNetModel/config.json", "ControlNetModel/diffusion_pytorch_model.safetensors",
                  "ip-adapter.bin", "ip-adapter.safetensors"),
                 repo_id="InstantX/InstantID", markers=("ControlNetModel/config.json",)),
        diffusers_part(*SDXL, folder="sdxl", only_if_missing=True),  # the SDXL base, when not found
    ),
    # sherpa-onnx's Kokoro (ONNX): the int8 model, voices, tokens, lexicons and the Chinese number/date
    # rules; not espeak-ng-data nor dict/ (sherpa-onnx >= 2.0 ignores both). voices.bin last: the marker.
    "local-tts": (RepoPart(("*.onnx", "voices.bin", "tokens.txt", "lexicon-us-en.txt", "lexicon-zh.txt",
                            "date-zh.fst", "number-zh.fst", "phone-zh.fst", "LICENSE", "README.md"),
                           markers=("voices.bin",), ignore=(".gitattributes",)),),
}
GENERIC = (RepoPart(("model_index.json", "*/*")),)  # an engine with a hub_id and no row above
MANUAL_NOTES = {  # parts no hub repo provides: the UI says where they go
    "sdxl-instantid": ("insightface antelopev2 is not on the hub: put its .onnx files in {faces}.",
                       "insightface antelopev2 不在 Hugging Face 上：请把它的 .onnx 文件放到 {faces}。"),
}


@dataclass
class Download:
    """The live state of one engine's download (the worker thread is its only writer)."""

    engine: str
    state: str = "idle"  # idle | downloading | done | failed | cancelled
    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    current: str = ""
    repo: str = ""  # the repository being listed or fetched
    folder: str = ""  # the engine's weights folder
    target: str = ""  # the folder being written (another engine's for a shared base model)
    message_en: str = ""
    message_zh: str = ""
    error_code: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)
    socket: object | None = field(default=None, repr=False)  # the open download connection's socket

    def abort(self) -> None:
        """Cancel now, even inside a read on a stalled connection: closing a socket does not wake
        a thread blocked on it, shutting it down does."""
        self.cancel.set()
        sock = self.socket
        if sock is not None:
            try:
                sock.shutdown(socket_module.SHUT_RDWR)
            except OSError:  # already closed
                pass

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("engine", "state", "bytes_done", "bytes_total", "files_done",
                                               "files_total", "current", "repo", "folder", "message_en",
                                               "message_zh", "error_code")}


def weights_folder(settings, engine_id: str) -> Path:
    configured = settings.models.get(engine_id)
    return Path(configured).expanduser() if configured else settings.models_dir / engine_id


def hub_endpoint(settings) -> str:
    return (settings.hf_endpoint or os.environ.get("HF_ENDPOINT") or OFFICIAL_HUB).rstrip("/")


class ModelDownloads:
    def __init__(self, settings, engines: dict, secrets=None, *, chunk_bytes: int = 1 << 20,
                 retries: int = 5, retry_wait: float = 1.0, timeout: float = 30.0):
        self.settings, self.engines, self.secrets = settings, engines, secrets
        self.chunk_bytes, self.retries, self.retry_wait, self.timeout = chunk_bytes, retries, retry_wait, timeout
        self._tasks: dict[str, Download] = {}
        self._lock = threading.Lock()

    # --- public -------------------------------------------------------------------------
    def targets(self) -> dict[str, str]:
        """Engine id -> hub repo, for every local engine that can be downloaded."""
        return {e.id: e.hub_id for e in self.engines.values()
                if e.kind == "local" and getattr(e, "hub_id", None)}

    def notes(self, engine_id: str) -> tuple[str, str] | None:
        note = MANUAL_NOTES.get(engine_id)
        if note is None:
            return None
        from .instantid.face import insightface_root

        faces = insightface_root(self.settings) / "models" / "antelopev2"
        return note[0].format(faces=faces), note[1].format(faces=faces)

    def start(self, engine_id: str) -> dict:
        engine = self._engine(engine_id)
        with self._lock:
            task = self._tasks.get(engine_id)
            if task is not None and task.state == "downloading":
                return task.row()
            for other in self._tasks.values():
                shared = self._folders(engine_id) & self._folders(other.engine)
                if other.state == "downloading" and shared:
                    where = ", ".join(sorted(shared))
                    raise ValidationError(f"{other.engine} is already downloading into {where}; wait for it.",
                                          f"{other.engine} 正在下载到 {where}，请等它完成。")
            task = Download(engine_id, state="downloading", folder=str(weights_folder(self.settings, engine_id)))
            task.message_en, task.message_zh = f"Starting {engine.hub_id}…", f"正在开始 {engine.hub_id}…"
            task.thread = threading.Thread(target=self._run, args=(task, engine), name=f"download-{engine_id}",
                                           daemon=True)
            self._tasks[engine_id] = task
        task.thread.start()
        return task.row()

    def cancel(self, engine_id: str) -> dict:
        self._engine(engine_id)
        task = self._tasks.get(engine_id)
        if task is None:
            return Download(engine_id).row()
        task.abort()
        return task.row()

    def stop(self, timeout: float = 5.0) -> None:
        """Studio shutdown: running downloads stop; their parts stay for the next start to resume."""
        tasks = [t for t in list(self._tasks.values()) if t.state == "downloading"]
        for task in tasks:
            task.abort()
        deadline = time.monotonic() + timeout
        for task in tasks:
            if task.thread is not None:
                task.thread.join(max(deadline - time.monotonic(), 0))

    def status(self) -> dict[str, dict]:
        return {eid: (self._tasks.get(eid) or Download(eid, folder=str(weights_folder(self.settings, eid)))).row()
                for eid in self.targets()}

    def running(self) -> bool:
        return any(t.state == "downloading" for t in list(self._tasks.values()))

    def wait(self, engine_id: str, timeout: float | None = None) -> dict:
        task = self._tasks.get(engine_id)
        if task is not None and task.thread is not None:
            task.thread.join(timeout)
        return self.status()[engine_id]

    # --- planning -----------------------------------------------------------------------
    def _engine(self, engine_id: str):
        engine = self.engines.get(engine_id)
        if engine is None:
            raise ValidationError(f"Unknown engine '{engine_id}'.", f"未知引擎“{engine_id}”。")
        if engine.kind != "local" or not getattr(engine, "hub_id", None):
            raise ValidationError(f"{engine_id} has no model on the Hugging Face hub to download.",
                                  f"{engine_id} 没有可从 Hugging Face 下载的模型。")
        return engine

    def _parts(self, engine_id: str) -> tuple[RepoPart, ...]:
        return PLANS.get(engine_id, GENERIC)

    def _folders(self, engine_id: str) -> set[str]:
        return {str(weights_folder(self.settings, p.folder or engine_id)) for p in self._parts(engine_id)}

    def _token(self, endpoint: str) -> str | bool:
        token = self.secrets.get("HF_TOKEN") if self.secrets is not None else os.environ.get("HF_TOKEN")
        if token:
            return token
        if endpoint == OFFICIAL_HUB:  # the user's own `hf auth login`, never sent to a mirror
            from huggingface_hub import get_token

            return get_token() or False
        return False

    def _plan(self, task: Download, engine, endpoint: str, token) -> list[tuple[str, str, Path, list[RemoteFile]]]:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=endpoint, token=token, library_name="xianying")
        plan = []
        for part in self._parts(engine.id):
            if part.only_if_missing and engine.weights().path is not None:
                continue
            repo = part.repo_id or engine.hub_id
            task.repo, task.target = repo, str(weights_folder(self.settings, part.folder or engine.id))
            info = api.model_info(repo, revision="main")
            if info.gated and not token:
                raise gated_error(repo, endpoint, Path(task.target))
            entries = [RemoteFile(f.path, f.size, f.blob_id, f.lfs.sha256 if f.lfs else None)
                       for f in api.list_repo_tree(repo, recursive=True, revision=info.sha)
                       if hasattr(f, "blob_id")]
            plan.append((repo, info.sha, weights_folder(self.settings, part.folder or engine.id),
                         part.select(entries)))
        return plan

    # --- the worker ---------------------------------------------------------------------
    def _run(self, task: Download, engine) -> None:
        endpoint = hub_endpoint(self.settings)
        task.repo, task.target = engine.hub_id, task.folder
        try:
            if offline():
                raise ConfigError("HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: unset it and restart the studio "
                                  f"to download, or copy the model folder to {task.folder} by hand.",
                                  "已设置 HF_HUB_OFFLINE（或 TRANSFORMERS_OFFLINE）：请取消后重启工作室再下载，"
                                  f"或手动把模型文件夹复制到 {task.folder}。", reason="offline")
            token = self._token(endpoint)
            plan = self._plan(task, engine, endpoint, token)
            self._count(task, plan)
            for repo, sha, target, files in plan:
                task.repo, task.target = repo, str(target)
                for f in files:
                    if not complete(target / f.path, f):
                        self._fetch(task, repo, sha, f, target, endpoint, token)
                        task.files_done += 1
                tidy(target)
            task.current = ""
            task.message_en = f"Done: {task.files_total} files in {task.folder}."
            task.message_zh = f"完成：{task.files_total} 个文件，位于 {task.folder}。"
            task.state = "done"
            log.info("download %s done (%d files, %d bytes)", task.engine, task.files_total, task.bytes_total)
        except Cancelled:
            task.message_en = f"Cancelled. The partial files stay in {task.target}: Download again to resume."
            task.message_zh = f"已取消。已下载的部分保留在 {task.target}，再次点击下载即可继续。"
            task.state = "cancelled"
        except Exception as exc:  # every failure becomes a message for the person who clicked
            err = exc if isinstance(exc, AppError) else explain(exc, repo=task.repo, endpoint=endpoint,
                                                                folder=Path(task.target))
            if not isinstance(exc, AppError) and err.fields.get("reason") == "error":
                log.exception("download %s failed", task.engine)
            else:
                log.warning("download %s failed: %s", task.engine, err.fields.get("reason"))
            task.message_en, task.message_zh = err.en, err.zh
            task.error_code = err.fields.get("reason", "error")
            task.state = "failed"

    def _count(self, task: Download, plan) -> None:
        need: dict[int, list] = {}  # disk -> [first folder on it, its existing parent, bytes still to fetch]
        for _, _, target, files in plan:
            where = existing_parent(target)
            disk = need.setdefault(where.stat().st_dev, [target, where, 0])
            task.files_total += len(files)
            for f in files:
                task.bytes_total += f.size
                if complete(target / f.path, f):
                    task.files_done += 1
                    task.bytes_done += f.size
                else:
                    have = part_size(target, f)
                    task.bytes_done += have
                    disk[2] += f.size - have
        for target, where, total in need.values():  # two folders on one disk share its free space
            free = shutil.disk_usage(where).free
            if total > free:
                raise disk_full_error(target, total - free)
        task.message_en = f"Downloading {', '.join(r for r, *_ in plan)} into {task.folder}"
        task.message_zh = f"正在下载 {', '.join(r for r, *_ in plan)} 到 {task.folder}"

    def _fetch(self, task: Download, repo: str, sha: str, f: RemoteFile, target: Path, endpoint: str, token):
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers

        part = part_path(target, f)
        part.parent.mkdir(parents=True, exist_ok=True)
        url = hf_hub_url(repo, f.path, revision=sha, endpoint=endpoint)
        headers = build_hf_headers(token=token, library_name="xianying")
        headers["Accept-Encoding"] = "identity"  # byte ranges of the file itself, not of a gzip stream
        task.current = f.path
        failures = 0
        while (have := size_of(part)) < f.size:
            try:
                self._stream(task, url, headers, part, have)
            except Exception as exc:  # a network drop or a 5xx: resume from what is on disk
                if task.cancel.is_set():
                    raise Cancelled() from exc
                if not transient(exc):
                    raise
                failures = 0 if size_of(part) > have else failures + 1
                if failures > self.retries:
                    raise
                log.warning("download %s: %s interrupted (%s), resuming", task.engine, f.path, type(exc).__name__)
                if task.cancel.wait(min(self.retry_wait * 2 ** max(failures - 1, 0), 30)):
                    raise Cancelled()
        if size_of(part) != f.size or digest(part, f) != f.etag:
            part.unlink(missing_ok=True)
            raise EngineError(f"{f.path} from {repo} arrived damaged (size or checksum differs); it was removed: "
                              "click Download again.",
                              f"{repo} 的 {f.path} 下载后校验失败（大小或校验和不符），已删除，请重新下载。",
                              reason="checksum")
        dest = target / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        replace_with_retry(part, dest)

    def _stream(self, task: Download, url: str, headers: dict, part: Path, have: int) -> None:
        from huggingface_hub.utils import get_session, hf_raise_for_status

        h = dict(headers)
        if have:
            h["Range"] = f"bytes={have}-"
        try:
            with get_session().stream("GET", url, headers=h, timeout=self.timeout) as r:
                stream = r.extensions.get("network_stream")
                task.socket = stream.get_extra_info("socket") if stream is not None else None
                if task.cancel.is_set():  # cancelled while connecting
                    raise Cancelled()
                if r.status_code == 416:  # the part is not a prefix of this file any more
                    part.unlink(missing_ok=True)
                    task.bytes_done -= have
                    return
                hf_raise_for_status(r)
                if have and r.status_code != 206:  # the server ignored the range: start the file over
                    part.unlink(missing_ok=True)
                    task.bytes_done -= have
                with part.open("ab") as out:
                    for chunk in r.iter_bytes(self.chunk_bytes):
                        if task.cancel.is_set():
                            raise Cancelled()
                        out.write(chunk)
                        task.bytes_done += len(chunk)
        finally:
            task.socket = None
        if task.cancel.is_set():
            raise Cancelled()


__all__ = ["IGNORE", "PLANS", "ModelDownloads", "RepoPart", "hub_endpoint", "weights_folder"]
