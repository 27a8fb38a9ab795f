"""The retention sweep: scratch outputs older than ``storage.retention_hours`` are deleted.

Scratch = a finished job outside any project (no ``project``, no ``parent``) submitted through
an API (Gradio API or REST; UI jobs too when ``sweep_ui_outputs`` is on in rest.yaml). Project
assets are never swept. The job row stays (``output_dir`` cleared, ``outputs`` kept as a record),
with ``info.cleaned`` saying when and why its files went, so a later download answers "removed
by the retention sweep" rather than a bare 404.

``RetentionSweeper`` runs ``sweep()`` on a daemon thread every ``interval_s`` while the studio
runs; ``retention_hours: 0`` turns it off.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from app import jobstate
from app.db import Job, connection
from app.jobs import iso

log = logging.getLogger(__name__)
UPLOAD_CACHE_HOURS = 24.0  # Gradio's uploads and served copies live this long


class RetentionSweeper:
    def __init__(self, settings, *, interval_s: float = 600.0, include_ui: bool = False):
        self.settings = settings
        self.interval_s = interval_s
        self.include_ui = include_ui
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def hours(self) -> float:
        return float(self.settings.storage.retention_hours)

    def candidates(self, now: float):
        cutoff = now - self.hours * 3600.0
        query = (Job.select().where(Job.status == "succeeded", Job.project.is_null(), Job.parent.is_null(),
                                    Job.finished_at < cutoff, Job.output_dir.is_null(False))
                 .order_by(Job.finished_at))
        if not self.include_ui:
            query = query.where(Job.source != "ui")
        return query

    def sweep_upload_cache(self, now: float | None = None, max_age_h: float = UPLOAD_CACHE_HOURS) -> int:
        """Delete files in Gradio's cache (uploads, and the copies it serves) older than ``max_age_h``
        hours; return how many were removed. A stored job keeps its own copy of every input."""
        from .headers import gradio_cache_roots

        now = time.time() if now is None else now
        cutoff, removed = now - max_age_h * 3600.0, 0
        for root in gradio_cache_roots():
            if not root.is_dir():
                continue
            for path in sorted(root.rglob("*"), reverse=True):  # files before their folders
                try:
                    if path.is_symlink() or path.is_file():
                        if path.lstat().st_mtime < cutoff:
                            path.unlink()
                            removed += 1
                    elif path.is_dir() and path != root:
                        path.rmdir()  # only when empty
                except OSError:
                    continue
        if removed:
            log.info("retention: removed %d file(s) from the upload cache", removed)
        return removed

    def sweep_staging(self, now: float | None = None, max_age_h: float = 1.0) -> int:
        """Remove the staging folders of submit calls (``app.inputs.staging``) older than ``max_age_h``:
        a call removes its own when it ends, so these are what a killed process left. (Age, not
        ownership: another process of the same workspace may be in the middle of a call.)"""
        now = time.time() if now is None else now
        removed = 0
        for folder in self.settings.staging_dir.glob("submit-*"):
            try:
                if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < now - max_age_h * 3600.0:
                    shutil.rmtree(folder)
                    removed += 1
            except OSError:
                continue
        return removed

    def sweep(self, now: float | None = None) -> int:
        """Delete expired scratch outputs (and old upload-cache files and submit staging folders); return
        how many jobs were cleaned."""
        self.sweep_upload_cache(now)
        self.sweep_staging(now)
        if self.hours <= 0:
            return 0
        now = time.time() if now is None else now
        outputs = self.settings.outputs_dir.resolve()
        cleaned = 0
        with connection():
            for job in self.candidates(now).limit(1000):
                folder = (self.settings.workspace / job.output_dir).resolve()
                if not folder.is_relative_to(outputs) or folder == outputs:
                    log.warning("retention: job %s has an output folder outside outputs/; left alone", job.id)
                    continue
                shutil.rmtree(folder, ignore_errors=True)
                self._drop_empty(folder.parent, outputs)
                note = (f"Removed by the retention sweep at {iso(now)}: scratch outputs are kept "
                        f"{self.hours:g} h (storage.retention_hours).")
                note_zh = (f"已于 {iso(now)} 被保留期清理删除：临时输出保留 {self.hours:g} 小时"
                           "（storage.retention_hours）。")
                jobstate.save_info(job.id, {"cleaned": note, "cleaned_zh": note_zh, "cleaned_at": iso(now)},
                                   output_dir=None)
                cleaned += 1
        if cleaned:
            log.info("retention: removed the outputs of %d job(s)", cleaned)
        return cleaned

    @staticmethod
    def _drop_empty(folder: Path, stop: Path) -> None:
        if folder != stop and folder.is_relative_to(stop):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass

    # --- background thread ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception:  # a sweep must never take the studio down; try again next round
                log.exception("retention sweep failed")
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="retention-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
