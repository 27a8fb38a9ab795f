"""The shape of a job request, and turning its images into files the studio holds.

An image may be given as an ``http(s)`` URL (passed through to cloud vendors), a
``data:image/...;base64,`` URI, an uploaded file (gradio's ``{"path": ...}`` dict), a file
already in the workspace, or ``job:<task_id>`` (a previous job's image output).
Uploads and data URIs are checked with Pillow and stored once, by content hash, under
``<workspace>/uploads/``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.errors import ValidationError
from core.images import MAX_IMAGE_BYTES, check_image

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
PROJECT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DATA_URI = re.compile(r"^data:([a-z0-9.+/-]+)?(;[a-z0-9=.+-]+)*;base64,(.*)$", re.S | re.I)


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: str = Field(..., min_length=1, max_length=64)
    prompt: str = Field("", max_length=5000)
    negative_prompt: str = Field("", max_length=5000)
    image: Any = None
    last_image: Any = None
    reference_images: list[Any] = Field(default_factory=list, max_length=9)  # Seedance 2.0 takes 9
    params: dict = Field(default_factory=dict)
    project: str | None = Field(None, max_length=64, pattern=PROJECT_ID.pattern)


def task_for(req: SubmitRequest) -> str:
    if req.reference_images:
        return "ref2v"
    if req.image is not None and req.last_image is not None:
        return "kf2v"
    if req.image is not None:
        return "i2v"
    return "t2v"


def speech_request(req: SubmitRequest) -> SubmitRequest:
    """A request to a speech (``tts``) engine: no images; the text is ``params.text``, or the
    prompt when ``params`` has none (the prompt box of the Create tab). The prompt itself stays
    as sent, so a request hashes the same before and after it is stored."""
    if req.image is not None or req.last_image is not None or req.reference_images:
        raise ValidationError("A speech engine takes text, not images.", "语音引擎只接受文字，不接受图片。")
    if not str(req.params.get("text") or "").strip() and req.prompt.strip():
        return req.model_copy(update={"params": {**req.params, "text": req.prompt}})
    return req


def script_request(req: SubmitRequest) -> SubmitRequest:
    """A request to a script engine: no images; the chapter is ``params.text``, or the prompt when
    ``params`` has none."""
    if req.image is not None or req.last_image is not None or req.reference_images:
        raise ValidationError("A script engine takes text, not images.", "剧本引擎只接受文字，不接受图片。")
    if not str(req.params.get("text") or "").strip() and req.prompt.strip():
        return req.model_copy(update={"params": {**req.params, "text": req.prompt}})
    return req


def upload_roots() -> list[Path]:
    """Where Gradio keeps files people uploaded (its cache): the only paths a user may name."""
    roots = [Path(tempfile.gettempdir()) / "gradio"]
    if os.environ.get("GRADIO_TEMP_DIR"):
        roots.append(Path(os.environ["GRADIO_TEMP_DIR"]))
    return [r.resolve() for r in roots]


def _store_bytes(data: bytes, uploads: Path, role: str) -> Path:
    ext = check_image(data, max_bytes=MAX_IMAGE_BYTES, what=role, what_zh=role)
    uploads.mkdir(parents=True, exist_ok=True)
    target = uploads / f"{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
    if not target.exists():
        from core.media import atomic_write_bytes

        atomic_write_bytes(target, data)
    return target


def _unusable(role: str) -> ValidationError:
    """One answer for a path that is missing, unreadable or not allowed: which server paths exist
    is nobody's business."""
    return ValidationError(f"{role}: this file cannot be used; upload the image, or give a URL, a data URI "
                           "or job:<task_id>.",
                           f"{role}：无法使用此文件；请上传图片，或提供 URL、data URI 或 job:<任务ID>。")


def resolve_image(value: Any, role: str, workspace: Path, find_job_image, *, trusted: bool = False,
                  stage: Path | None = None) -> dict:
    """Return ``{"role", "url"}`` or ``{"role", "path"}`` (workspace-relative) for a request image.

    ``find_job_image(ref)`` resolves ``job:<id>[#n]`` with the caller's rights. A plain path must
    be a file in Gradio's upload cache; ``trusted`` callers (admins, the person at the machine)
    may also name files in the workspace.

    ``stage``: bytes the studio keeps (a data URI, a copy of an upload) are written there, not in
    ``uploads``, and the answer also names that file (``"staged"``): ``adopt_staged`` moves it into
    ``uploads`` once the request is accepted. A request refused later (a later request of the same
    batch, a quota) then leaves nothing behind, so refused calls cannot fill the disk."""
    uploads = workspace / "uploads"
    keep = stage if stage is not None else uploads
    if isinstance(value, dict):
        value = value.get("path") or value.get("url")
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{role}: expected a URL, data URI, uploaded file or job:<task_id>.",
                              f"{role}：应为 URL、data URI、上传的文件或 job:<任务ID>。")
    value = value.strip()
    if value.startswith(("http://", "https://")):
        if len(value) > 4096:
            raise ValidationError(f"{role}: URL too long.", f"{role}：URL 过长。")
        return {"role": role, "url": value}
    if value[:5].lower() == "data:":
        m = _DATA_URI.match(value)
        if m is None or not (m.group(1) or "").lower().startswith("image/"):
            raise ValidationError(f"{role}: a data URI must hold a base64 image (data:image/png;base64,...).",
                                  f"{role}：data URI 必须是 base64 图片（data:image/png;base64,...）。")
        try:
            data = base64.b64decode(m.group(3), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"{role}: the data URI is not valid base64.",
                                  f"{role}：data URI 不是有效的 base64。") from exc
        path = _store_bytes(data, keep, role)
    elif value.startswith("job:") or JOB_ID.match(value):
        path = find_job_image(value.removeprefix("job:"))
    else:
        if len(value) > 4096 or "\0" in value:
            raise _unusable(role)
        try:
            real = Path(value).expanduser().resolve(strict=True)
            roots = upload_roots() + ([workspace.resolve()] if trusted else [])
            if not real.is_file() or not any(real.is_relative_to(root) for root in roots):
                raise _unusable(role)
            if real.is_relative_to(uploads.resolve()):
                path = real
            else:
                path = _store_bytes(real.read_bytes(), keep, role)
        except (OSError, RuntimeError, ValueError) as exc:
            raise _unusable(role) from exc
    path = Path(path)
    if stage is not None and path.parent == stage:
        return {"role": role, "path": str((uploads / path.name).resolve().relative_to(workspace.resolve())),
                "staged": str(path)}
    return {"role": role, "path": str(path.resolve().relative_to(workspace.resolve()))}


@contextlib.contextmanager
def staging(tmp: Path):
    """A folder of one submit call's own (``resolve_image``'s ``stage``), removed when the call ends."""
    stage = tmp / f"submit-{uuid.uuid4().hex}"
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def adopt_staged(images: list[dict], workspace: Path) -> None:
    """Move each staged image (``resolve_image(stage=...)``) to its place in ``uploads`` (named by its
    content: one already there is the same bytes). Called inside the transaction that stores the job."""
    from core.platform import replace_with_retry

    for image in images:
        staged = image.get("staged")
        if staged is not None:
            final, source = workspace / image["path"], Path(staged)
            final.parent.mkdir(parents=True, exist_ok=True)
            if source.exists():
                replace_with_retry(source, final)
            elif not final.is_file():  # (the same bytes twice in one call: moved by the first)
                raise FileNotFoundError(f"staged image {source.name} is gone")
