"""The worker's side of result delivery: upload a finished staging folder to the studio in
chunks (SHA-256 per chunk and per file), resume after a dropped connection or a studio restart
from what the studio says it has, then commit. See app/api/uploads.py for the routes.

``deliver`` returns True once the studio published the result, False when the studio says this
run no longer holds the job (its lease was taken over): the worker then drops its files.
The API key travels only in the ``Authorization`` header; it is never logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from core.errors import AppError
from core.platform import replace_with_retry
from core.hashing import sha256_file

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 2**20  # under the REST body limit (rest.yaml max_body_mb, default 16)
DELIVER_DEADLINE_S = 900.0


class DeliveryFailed(AppError):
    code = "delivery_failed"


class LeaseLost(Exception):
    """The studio refused: another run holds the job now."""


file_sha256 = sha256_file  # (the name the worker code uses)


class StudioUploader:
    def __init__(self, base_url: str, api_key: str | None, *, chunk_bytes: int = CHUNK_BYTES,
                 deadline_s: float = DELIVER_DEADLINE_S, transport: httpx.BaseTransport | None = None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=60.0, transport=transport)
        self.chunk_bytes = chunk_bytes
        self.deadline_s = deadline_s
        self.chunks_sent = 0

    def close(self) -> None:
        self.client.close()

    # --- one request, with retries ---------------------------------------------------------
    def _request(self, method: str, url: str, deadline: float, **kwargs) -> httpx.Response:
        delay = 0.25
        while True:
            try:
                r = self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                why = type(exc).__name__
            else:
                if r.status_code == 409 and r.json().get("code") == "stale_lease":
                    raise LeaseLost(r.json().get("detail"))
                if r.status_code < 500 and r.status_code != 429:
                    return r
                why = f"HTTP {r.status_code}"
                if r.status_code == 429:
                    delay = max(delay, float(r.headers.get("retry-after", 1)))
            if time.monotonic() + delay > deadline:
                raise DeliveryFailed(f"Could not reach the studio at {self.base} ({why}).",
                                     f"无法连接工作室 {self.base}（{why}）。")
            log.info("studio unreachable (%s); retrying in %.1fs", why, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    # --- the protocol ------------------------------------------------------------------------
    def deliver(self, job_id: str, fence: int, work: Path, fields: dict) -> bool:
        deadline = time.monotonic() + self.deadline_s
        base = f"/api/v1/team/jobs/{job_id}/uploads/{int(fence)}"
        files = {str(p.relative_to(work)).replace(os.sep, "/"): p for p in sorted(work.rglob("*")) if p.is_file()}
        manifest = {rel: {"size": p.stat().st_size, "sha256": file_sha256(p)} for rel, p in files.items()}
        try:
            for _ in range(3):  # a commit that finds a damaged file makes us send that file again
                have = self._request("GET", base, deadline).json().get("files", {})
                for rel, path in files.items():
                    self._send_file(base, rel, path, int(have.get(rel, 0)), manifest[rel]["size"], deadline)
                r = self._request("POST", f"{base}/commit", deadline, json={"files": manifest, "fields": fields})
                if r.status_code == 200:
                    return True
                log.warning("commit of job %s refused (%s): %s", job_id, r.status_code, r.json().get("detail"))
            raise DeliveryFailed(f"The studio refused the result of task {job_id}.", f"工作室拒收任务 {job_id} 的结果。")
        except LeaseLost as exc:
            log.warning("job %s: %s", job_id, exc)
            return False

    def _send_file(self, base: str, rel: str, path: Path, offset: int, size: int, deadline: float) -> None:
        if offset > size:
            offset = 0
        url = f"{base}/{quote(rel)}"
        with open(path, "rb") as fh:
            while offset < size or (size == 0 and offset == 0):
                fh.seek(offset)
                data = fh.read(self.chunk_bytes)
                r = self._request("PUT", url, deadline, params={"offset": offset}, content=data,
                                  headers={"X-Chunk-Sha256": hashlib.sha256(data).hexdigest(),
                                           "Content-Type": "application/octet-stream"})
                self.chunks_sent += 1
                if r.status_code == 409:  # the studio has a different amount: resume from there
                    offset = int(r.json().get("size", 0))
                    continue
                if r.status_code != 200:
                    raise DeliveryFailed(f"Upload of {rel} refused: HTTP {r.status_code} {r.text[:200]}",
                                         f"上传 {rel} 被拒绝：HTTP {r.status_code}")
                offset = int(r.json()["size"])
                if size == 0:
                    return

    def fetch_input(self, job_id: str, index: int, dest: Path) -> None:
        """Download input image ``index`` of a job to ``dest`` (written whole, then renamed)."""
        deadline = time.monotonic() + 120.0
        r = self._request("GET", f"/api/v1/team/jobs/{job_id}/inputs/{int(index)}", deadline)
        if r.status_code != 200:
            raise DeliveryFailed(f"The studio has no input file #{index} for task {job_id} (HTTP {r.status_code}).",
                                 f"工作室没有任务 {job_id} 的第 {index} 个输入文件。")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        tmp.write_bytes(r.content)
        replace_with_retry(tmp, dest)
