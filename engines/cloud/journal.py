"""What a cloud adapter was doing around its create call, kept on disk per job.

The runner commits the vendor's task id only after ``start()`` returns, so a crash while the
create request is in flight (or just after its answer) leaves a job with no remote id, and
the runner calls ``start()`` again. A note written before the create (idempotency key,
generation) and after it (the vendor's task id) lets the adapter resume instead of sending a
second billed create.

What a note holds (written by ``engines.cloud.safecreate.create_steps``): ``state`` (``sending``,
``created``, ``not_created``, ``maybe_created``; Zhipu also ``finished``), ``generation`` (which
create of the job: it names the request key), ``request_ref`` (the id a person can look for in
the vendor's console), ``first_sent_at`` / ``sent_at`` / ``failed_at``, ``remote_id`` (the
vendor's task), ``resend`` ("Retry anyway" was asked), and ``attempts``: the last 20 create
attempts, each ``{at, generation, n, outcome, kind, code, request_ref, task_id}`` where outcome
is ``sending`` (written before the request leaves), ``created``, ``not_created``,
``maybe_created``, ``adopted``, ``resume`` or ``resend_requested``. Adapters add their own fields
(Ark: ``seed``, ``model``).

``CreateJournal(workspace, engine_id)``   notes live in ``<workspace>/cloud/<engine_id>/<job>.json``
``load(job_id) -> dict``                  the note, ``{}`` when there is none (or it is unreadable)
``save(job_id, **fields) -> dict``        merge fields into the note, written atomically
``clear(job_id)``                         forget the note (the job's task is finished)
``sweep(keep_s=7 days, at_most_every=None) -> int``   remove notes older than that (not again
                                          within ``at_most_every`` seconds of the folder's last sweep)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from core.media import atomic_write_json

log = logging.getLogger(__name__)

KEEP_S = 7 * 24 * 3600
SWEEP_EVERY_S = 3600.0  # a collect's sweep, at most this often per folder
_last_sweep: dict[Path, float] = {}  # folder -> when this process last swept it (time.monotonic)


class CreateJournal:
    def __init__(self, workspace: Path, engine_id: str):
        self.root = Path(workspace) / "cloud" / engine_id

    def _path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def load(self, job_id: str) -> dict:
        try:
            data = json.loads(self._path(job_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("unreadable create note for job %s; treating it as absent", job_id)
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, job_id: str, **fields) -> dict:
        return self.save_over(self.load(job_id), job_id, **fields)

    def save_over(self, current: dict, job_id: str, **fields) -> dict:
        """``save``, over the note as the caller just loaded it (``current``): no second read."""
        data = {**current, **fields, "updated_at": time.time()}
        atomic_write_json(self._path(job_id), data)
        return data

    def clear(self, job_id: str) -> None:
        self._path(job_id).unlink(missing_ok=True)

    def sweep(self, keep_s: float = KEEP_S, *, at_most_every: float | None = None) -> int:
        """Remove notes older than ``keep_s``. ``at_most_every``: not again within that many seconds of
        this folder's last sweep in this process (a collect sweeps: with 500 jobs in flight, a sweep per
        collect read the whole folder 500 times)."""
        now = time.monotonic()
        if at_most_every is not None and now - _last_sweep.get(self.root, -at_most_every) < at_most_every:
            return 0
        _last_sweep[self.root] = now
        if not self.root.is_dir():
            return 0
        cutoff, removed = time.time() - keep_s, 0
        for path in self.root.glob("*.json"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed
