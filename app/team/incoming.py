"""The studio's side of result uploads: files of a job's finished run arrive in chunks into
``outputs/.incoming/<job_id>.<fence>/`` and become visible only at the commit, which checks every
file's size and SHA-256 and then, in one transaction, marks the row succeeded and renames the
folder into ``outputs/<date>/<job_id>/`` — only while that run still holds the job (its fence).

A run's uploads survive a dropped connection (``received`` tells the worker where to resume) and
a studio restart; those of a run that lost its lease are refused (409) and swept later.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
from pathlib import Path

from app.db import Job, connection
from core.errors import Conflict, NotFound, ValidationError
from core.hashing import sha256_file

NAME = re.compile(r"^[\w][\w.\- ]{0,199}$")  # one path part: no leading dot, no separators
OUTPUT_DIR = re.compile(r"^outputs/\d{4}-\d{2}-\d{2}/[0-9a-f]{32}$")
ALLOWED_FIELDS = ("outputs", "output_dir", "info", "finished_at", "message")


class StaleLease(Conflict):
    code = "stale_lease"


def check_rel(path: str) -> str:
    parts = (path or "").split("/")
    if not parts or len(parts) > 4 or not all(NAME.match(p) for p in parts):
        raise ValidationError(f"Bad file name in upload: {path[:120]!r}.", f"上传的文件名无效：{path[:120]!r}。")
    return "/".join(parts)


class IncomingStore:
    def __init__(self, studio):
        self.studio = studio
        self.settings = studio.settings
        self.root = self.settings.outputs_dir / ".incoming"
        self._lock = threading.Lock()

    def folder(self, job_id: str, fence: int) -> Path:
        return self.root / f"{job_id}.{int(fence)}"

    def holding(self, job_id: str, fence: int) -> Job:
        """The job, when run ``fence`` still holds it; else ``StaleLease``."""
        with connection():
            job = self.studio.service.row(job_id)
        if job.fence != fence or job.status != "running":
            raise StaleLease(f"Task {job_id} is no longer held by this run (fence {fence}); drop the result.",
                             f"任务 {job_id} 已不属于这次运行（fence {fence}），请丢弃结果。")
        return job

    def received(self, job_id: str, fence: int) -> dict[str, int]:
        self.holding(job_id, fence)
        folder = self.folder(job_id, fence)
        if not folder.is_dir():
            return {}
        return {str(p.relative_to(folder)).replace("\\", "/"): p.stat().st_size
                for p in folder.rglob("*") if p.is_file()}

    def write(self, job_id: str, fence: int, rel: str, offset: int, data: bytes, sha256: str | None) -> int:
        rel = check_rel(rel)
        if sha256 and hashlib.sha256(data).hexdigest() != sha256.lower():
            raise ValidationError("Chunk checksum mismatch; send it again.", "分块校验和不符，请重新发送。")
        self.holding(job_id, fence)
        path = self.folder(job_id, fence) / rel
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size if path.exists() else 0
            if offset == 0 and size:
                path.unlink()
                size = 0
            if offset != size:
                raise Conflict(f"Expected offset {size}, got {offset}.", f"偏移应为 {size}，收到 {offset}。",
                               size=size)
            with open(path, "ab") as fh:
                fh.write(data)
            return size + len(data)

    def commit(self, job_id: str, fence: int, files: dict, fields: dict) -> Job:
        """Check the files against the manifest, then publish them with the row, atomically."""
        job = self.holding(job_id, fence)
        folder = self.folder(job_id, fence)
        manifest = {check_rel(k): v for k, v in (files or {}).items()}
        have = self.received(job_id, fence)
        if set(have) != set(manifest):
            missing = sorted(set(manifest) - set(have))
            extra = sorted(set(have) - set(manifest))
            raise ValidationError(f"Upload incomplete: missing {missing[:5]}, unexpected {extra[:5]}.",
                                  f"上传不完整：缺少 {missing[:5]}，多出 {extra[:5]}。")
        bad = [rel for rel, meta in manifest.items()
               if have[rel] != int(meta.get("size", -1)) or sha256_file(folder / rel) != str(meta.get("sha256"))]
        if bad:
            for rel in bad:
                (folder / rel).unlink(missing_ok=True)
            raise ValidationError(f"Checksum or size mismatch for {bad[:5]}; upload them again.",
                                  f"文件校验失败：{bad[:5]}，请重新上传。")
        fields = {k: fields[k] for k in ALLOWED_FIELDS if k in fields}
        output_dir = str(fields.get("output_dir") or "")
        if not OUTPUT_DIR.match(output_dir) or not output_dir.endswith(job.id):
            raise ValidationError(f"Bad output_dir {output_dir[:80]!r}.", f"output_dir 无效：{output_dir[:80]!r}。")
        for out in fields.get("outputs") or []:
            for key in ("file", "thumbnail"):
                ref = out.get(key)
                if ref and (not ref.startswith(output_dir + "/") or ref[len(output_dir) + 1:] not in manifest):
                    raise ValidationError(f"Output {ref[:80]!r} is not among the uploaded files.",
                                          f"输出 {ref[:80]!r} 不在上传的文件中。")
        now = time.time()
        fields.update(progress=100.0, updated_at=now)  # (publish makes it succeeded, fenced)
        fields.setdefault("finished_at", now)
        final = self.settings.workspace / output_dir
        with connection():
            if not self.studio.runner.publish(job, fence, folder, final, fields):
                raise StaleLease(f"Task {job_id} was taken over while uploading; result dropped.",
                                 f"任务 {job_id} 在上传期间被接管，结果已丢弃。")
            job = Job.get_by_id(job_id)
        self.discard(job_id)
        return job

    def discard(self, job_id: str, fence: int | None = None) -> None:
        """Remove uploads of ``job_id`` (all runs', or one run's)."""
        if not self.root.is_dir():
            return
        pattern = f"{job_id}.{fence}" if fence is not None else f"{job_id}.*"
        for folder in self.root.glob(pattern):
            shutil.rmtree(folder, ignore_errors=True)

    def input_file(self, job_id: str, index: int) -> Path:
        with connection():
            job = self.studio.service.row(job_id)
        images = job.images or []
        if not 0 <= index < len(images) or not images[index].get("path"):
            raise NotFound(f"Task {job_id} has no input file #{index}.", f"任务 {job_id} 没有第 {index} 个输入文件。")
        ws = self.settings.workspace.resolve()
        path = (ws / images[index]["path"]).resolve()
        if not path.is_relative_to(ws) or not path.is_file():
            raise NotFound(f"Input file #{index} of task {job_id} is missing.", f"任务 {job_id} 的输入文件缺失。")
        return path

