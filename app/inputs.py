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
import hashlib
import io
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import ValidationError

MAX_IMAGE_BYTES = 20 * 2**20
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_DATA_URI = re.compile(r"^data:(image/[a-z0-9.+-]+);base64,(.*)$", re.S | re.I)


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: str = Field(..., min_length=1, max_length=64)
    prompt: str = Field("", max_length=5000)
    negative_prompt: str = Field("", max_length=5000)
    image: Any = None
    last_image: Any = None
    reference_images: list[Any] = Field(default_factory=list, max_length=8)
    params: dict = Field(default_factory=dict)
    project: str | None = Field(None, max_length=64)


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


def _allowed_roots(workspace: Path) -> list[Path]:
    roots = [workspace.resolve()]
    for base in (Path(tempfile.gettempdir()) / "gradio",):
        roots.append(base.resolve())
    import os

    if os.environ.get("GRADIO_TEMP_DIR"):
        roots.append(Path(os.environ["GRADIO_TEMP_DIR"]).resolve())
    return roots


def _store_bytes(data: bytes, uploads: Path) -> Path:
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError(f"Image is {len(data) / 2**20:.1f} MB; the limit is 20 MB.",
                              f"图片大小 {len(data) / 2**20:.1f} MB，超过 20 MB 上限。")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            fmt = (im.format or "png").lower()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValidationError("The image could not be read (PNG, JPEG or WebP expected).",
                              "无法读取图片（请使用 PNG、JPEG 或 WebP）。") from exc
    ext = {"jpeg": "jpg"}.get(fmt, fmt)
    uploads.mkdir(parents=True, exist_ok=True)
    target = uploads / f"{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
    if not target.exists():
        from .media import atomic_write_bytes

        atomic_write_bytes(target, data)
    return target


def resolve_image(value: Any, role: str, workspace: Path, find_job_image) -> dict:
    """Return ``{"role", "url"}`` or ``{"role", "path"}`` (workspace-relative) for a request image."""
    uploads = workspace / "uploads"
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
    if m := _DATA_URI.match(value):
        try:
            data = base64.b64decode(m.group(2), validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"{role}: the data URI is not valid base64.",
                                  f"{role}：data URI 不是有效的 base64。") from exc
        path = _store_bytes(data, uploads)
    elif value.startswith("job:") or JOB_ID.match(value):
        path = find_job_image(value.removeprefix("job:"))
    else:
        path = Path(value).expanduser()
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ValidationError(f"{role}: file not found.", f"{role}：文件不存在。") from exc
        if not any(real.is_relative_to(root) for root in _allowed_roots(workspace)):
            raise ValidationError(f"{role}: only uploaded files or files in the workspace can be used.",
                                  f"{role}：只能使用上传的文件或工作区中的文件。")
        if real.is_relative_to(uploads.resolve()):
            path = real
        else:
            path = _store_bytes(real.read_bytes(), uploads)
    return {"role": role, "path": str(Path(path).resolve().relative_to(workspace.resolve()))}
