"""What every seed router shares: the caller, job lookup with ownership, engine choice with a
clear "not available" error, download URLs, time formats, and per-seed error rendering.

Each seed keeps its own error shape: ``seed_route(render)`` builds an ``APIRoute`` class whose
handler turns request-validation errors, ``AppError`` and unexpected exceptions into that
shape (the one place errors are translated for a seed).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from app.db import Job
from core.errors import AppError, NotAvailable, NotFound, Unauthorized, ValidationError

from core.paths import contained_file

from .auth import Principal
from .middleware import PRINCIPAL

log = logging.getLogger(__name__)
MEDIA_ROUTE = "/videos/"


@dataclass
class Ctx:
    """One request's view of the studio."""

    studio: object
    request: Request
    principal: Principal

    @property
    def service(self):
        return self.studio.service

    @property
    def runtime(self):
        return self.studio.ops

    @property
    def config(self):
        return self.studio.ops.config

    @property
    def lang(self) -> str:
        first = self.request.headers.get("accept-language", "").split(",")[0].strip().lower()
        return "zh" if first.startswith("zh") else "en"


def ctx(request: Request) -> Ctx:
    """FastAPI dependency: the studio and the caller (fails closed without the middleware)."""
    principal = request.scope.get(PRINCIPAL)
    if principal is None:
        raise Unauthorized("Missing API key.", "缺少 API 密钥。")
    return Ctx(request.app.state.studio, request, principal)


# --- jobs ----------------------------------------------------------------------------------
def visible_job(c: Ctx, job_id: str) -> Job:
    """The job, when the caller may see it; others' jobs are simply "not found"."""
    return c.service.get(str(job_id), c.principal)


def submit(c: Ctx, request: dict, source: str) -> Job:
    return c.service.submit(request, c.principal, source=source)


def estimated_seconds(engine_id: str, lane: str, workers: int = 1, default: float = 60.0) -> int:
    """A rough wait: the engine's mean recent run time times (jobs ahead / workers + 1)."""
    recent = [j.finished_at - j.started_at for j in
              Job.select(Job.started_at, Job.finished_at)
              .where(Job.engine == engine_id, Job.status == "succeeded", Job.started_at.is_null(False))
              .order_by(Job.finished_at.desc()).limit(20)]
    mean = sum(recent) / len(recent) if recent else default
    ahead = Job.select().where(Job.lane == lane, Job.status.in_(("queued", "running"))).count()
    return max(1, int(round(mean * (ahead / max(1, workers) + 1))))


def check_image_ref(name: str, value) -> str:
    """REST images are URLs or data URIs only (never paths on this machine)."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://", "data:image/")):
        raise ValidationError(f"{name}: give an http(s) URL or a data:image/...;base64 URI.",
                              f"{name}：请提供 http(s) 地址或 data:image/...;base64 URI。")
    return value


# --- engines -------------------------------------------------------------------------------
def missing_keys(c: Ctx, engine) -> list[str]:
    names = [n.split(":", 1)[1] for n in getattr(engine, "needs", ()) if n.startswith("key:")]
    return [n for n in names if not c.studio.secrets.get(n)]


def engine_for(c: Ctx, engine_id: str, setting: str):
    """The engine a seed route uses, or ``NotAvailable`` saying exactly what to do."""
    engine = c.studio.engines.get(engine_id)
    if engine is None:
        known = ", ".join(sorted(c.studio.engines)) or "none"
        raise NotAvailable(f"The '{engine_id}' engine is not installed in this studio. Set engines.{setting} in "
                           f"rest.yaml to one that is (installed: {known}).",
                           f"本工作室未安装引擎“{engine_id}”。请在 rest.yaml 中把 engines.{setting} 设为已安装的引擎"
                           f"（已安装：{known}）。", engine=engine_id)
    ok, reason = engine.available()
    if not ok:
        keys = missing_keys(c, engine)
        if keys:
            names = " and ".join(keys)
            raise NotAvailable(f"Missing credentials: set {names} (environment variable or Settings → Provider "
                               f"keys) to use {engine_id}.",
                               f"缺少凭据：请设置 {names}（环境变量或“设置 → 服务商密钥”）以使用 {engine_id}。",
                               engine=engine_id, missing=keys)
        raise NotAvailable(f"{engine_id} is not available: {reason}", f"{engine_id} 不可用：{reason}",
                           engine=engine_id)
    return engine


# --- files and URLs ------------------------------------------------------------------------
def output_file(c: Ctx, job: Job, index: int = 0, thumb: bool = False) -> Path | None:
    if job.status != "succeeded" or index >= len(job.outputs):
        return None
    rel = job.outputs[index].get("thumbnail" if thumb else "file")
    return contained_file(c.studio.settings.workspace, rel) if rel else None


def media_url(c: Ctx, job: Job, index: int = 0, thumb: bool = False) -> str | None:
    """``<base>/videos/<job>[_<i>][_thumb].<ext>``: downloads that stay valid while the file exists."""
    path = output_file(c, job, index, thumb)
    if path is None:
        return None
    name = job.id + (f"_{index}" if index else "") + ("_thumb" if thumb else "") + path.suffix.lower()
    return str(c.request.base_url).rstrip("/") + MEDIA_ROUTE + name


# --- time ----------------------------------------------------------------------------------
def iso_naive(ts: float | None) -> str | None:
    """UTC, ISO 8601 without an offset, as seed 000 prints it: ``2024-01-01T12:00:00``."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") if ts else None


def local_str(ts: float | None) -> str | None:
    """Local time ``2025-06-16 20:08:58`` (seed 002)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else None


def unix(ts: float | None) -> int | None:
    return int(ts) if ts else None


def run_seconds(job: Job) -> float | None:
    return round(job.finished_at - job.started_at, 2) if job.finished_at and job.started_at else None


# --- errors --------------------------------------------------------------------------------
def validation_text(errors: list) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "Invalid request"


def json_safe(value, depth: int = 0):
    """``value`` with everything JSON cannot hold made text: a pydantic error about
    ``{"seed": 1e400}`` carries ``inf`` as its input, and ``NaN`` or an exception in ``ctx``
    would otherwise break the 422 while it is being built."""
    if depth > 20:
        return "…"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    return str(value)[:200]


Render = Callable[[Request, int, "str | list", str], object]


def seed_route(render: Render) -> type[APIRoute]:
    """An APIRoute whose errors come out in one seed's shape.

    ``render(request, status, detail, kind)`` where kind is ``validation`` (detail: the
    pydantic error list), an ``AppError.code`` (detail: text in the caller's language) or
    ``internal``.
    """

    class SeedRoute(APIRoute):
        def get_route_handler(self):
            original = super().get_route_handler()

            async def handler(request: Request):
                try:
                    return await original(request)
                except RequestValidationError as exc:
                    return render(request, 422, json_safe(list(exc.errors())), "validation")
                except AppError as exc:
                    lang = request.headers.get("accept-language", "").split(",")[0].strip().lower()
                    return render(request, exc.status, exc.text("zh" if lang.startswith("zh") else "en"), exc.code)
                except HTTPException:
                    raise
                except Exception as exc:  # a bug: keep the type for the log and the caller, not a traceback
                    log.exception("REST route %s failed", request.url.path)
                    return render(request, 500, f"Unexpected error: {type(exc).__name__}", "internal")

            return handler

    return SeedRoute
