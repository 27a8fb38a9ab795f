"""Helpers for cloud tests: wait for a job (or anything), run one, make a small image."""

from __future__ import annotations

import time
from app.access import LOCAL, Principal  # noqa: F401

TERMINAL = ("succeeded", "failed", "cancelled")


def wait_job(studio, job_id: str, statuses=TERMINAL, timeout: float = 20.0):
    """The job row once its status is one of ``statuses`` (fails the test after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = studio.service.get(job_id, LOCAL)
        if job.status in statuses:
            return job
        time.sleep(0.02)
    job = studio.service.get(job_id, LOCAL)
    raise AssertionError(f"job {job_id} still {job.status} ({job.message}) after {timeout}s")


def run_job(studio, request: dict, timeout: float = 20.0):
    job = studio.service.submit(request, LOCAL)
    return wait_job(studio, job.id, timeout=timeout)


def png_data_uri(color=(200, 40, 40), size=(64, 48)) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def wait_remote(studio, job_id: str, timeout: float = 20.0):
    """The job row once the vendor's task id is committed on it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = studio.service.get(job_id, LOCAL)
        if job.remote_id:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} got no remote id within {timeout}s")


def wait_until(check, what: str, timeout: float = 30.0):
    """``check()``'s first true value; fails the test saying ``what`` did not happen within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout}s")
