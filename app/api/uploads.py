"""Team mode: workers deliver results to the studio over its authenticated API (admin keys).

    GET    /api/v1/team/jobs/{id}/uploads/{fence}           what has arrived: {"files": {name: bytes}}
    PUT    /api/v1/team/jobs/{id}/uploads/{fence}/{name}    ?offset=N, raw body, X-Chunk-Sha256 header
    POST   /api/v1/team/jobs/{id}/uploads/{fence}/commit    {"files": {name: {size, sha256}}, "fields": {...}}
    DELETE /api/v1/team/jobs/{id}/uploads/{fence}           drop this run's partial upload
    GET    /api/v1/team/jobs/{id}/inputs/{index}            an input image of the job, for the worker

``fence`` is the token the run claimed the job with: every call answers 409 ``stale_lease``
once another run holds the job, and the worker drops its result. A 409 on a chunk with
``size`` tells the worker where to resume. See app/team/incoming.py and docs/team.md.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from core.errors import AppError

from .common import Ctx
from .middleware import PRINCIPAL

PREFIX = "/api/v1/team/jobs"


def _admin(request: Request) -> Ctx:
    principal = request.scope.get(PRINCIPAL)
    if principal is None:
        raise HTTPException(401, "Missing API key.", headers={"WWW-Authenticate": "Bearer"})
    if not principal.admin:
        raise HTTPException(403, "Workers need an admin API key: python launch.py keys create --user NAME --admin.")
    return Ctx(request.app.state.studio, request, principal)


def _error(exc: AppError, lang: str) -> JSONResponse:
    body = {"detail": exc.text(lang), "code": exc.code, **{k: v for k, v in exc.fields.items()
                                                          if isinstance(v, (int, str))}}
    return JSONResponse(body, exc.status)


async def _call(c: Ctx, fn, *args):
    try:
        return await anyio.to_thread.run_sync(fn, *args)
    except AppError as exc:
        return _error(exc, c.lang)


def build(studio) -> APIRouter:
    from app.team.incoming import IncomingStore

    store = IncomingStore(studio)
    router = APIRouter(prefix=PREFIX, tags=["team"])

    @router.get("/{job_id}/uploads/{fence}", summary="Files of this run received so far")
    async def received(job_id: str, fence: int, c: Ctx = Depends(_admin)):
        got = await _call(c, store.received, job_id, fence)
        return got if isinstance(got, JSONResponse) else {"files": got}

    @router.put("/{job_id}/uploads/{fence}/{name:path}", summary="Append one chunk of one file")
    async def chunk(job_id: str, fence: int, name: str, request: Request, offset: int = 0,
                    c: Ctx = Depends(_admin)):
        data = await request.body()
        size = await _call(c, store.write, job_id, fence, name, offset, data, request.headers.get("x-chunk-sha256"))
        return size if isinstance(size, JSONResponse) else {"size": size}

    @router.post("/{job_id}/uploads/{fence}/commit", summary="Publish the uploaded files and mark the task done")
    async def commit(job_id: str, fence: int, request: Request, c: Ctx = Depends(_admin)):
        body = await request.json()
        if not isinstance(body, dict):
            body = {}
        job = await _call(c, store.commit, job_id, fence, body.get("files") or {}, body.get("fields") or {})
        return job if isinstance(job, JSONResponse) else {"task_id": job.id, "status": job.status}

    @router.delete("/{job_id}/uploads/{fence}", summary="Drop this run's partial upload")
    async def discard(job_id: str, fence: int, c: Ctx = Depends(_admin)):
        await anyio.to_thread.run_sync(store.discard, job_id, fence)
        return {"task_id": job_id, "discarded": True}

    @router.get("/{job_id}/inputs/{index}", summary="An input image of a task, for the worker running it")
    async def input_file(job_id: str, index: int, c: Ctx = Depends(_admin)):
        path = await _call(c, store.input_file, job_id, index)
        return path if isinstance(path, JSONResponse) else FileResponse(path)

    return router
