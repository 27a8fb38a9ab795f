"""The HTTP server: FastAPI routes declared first, then the Gradio UI mounted at "/".

(Routes declared after mounting Gradio at "/" would 404 — see stack-notes.md.) The studio's
queue consumers start and stop with the app's lifespan.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse

from core.paths import contained_file

from .access import caller, handler
from .db import connection
from core.errors import AppError

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 210 * 2**20  # Gradio uploads: a project zip (200 MB) is the largest thing a person uploads


def create_app(studio, *, manage_studio: bool = True) -> FastAPI:
    import gradio as gr

    from .ui import CSS, build_ui

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if manage_studio:
            studio.start()
        app.state.started_at = time.time()
        try:
            yield
        finally:
            if manage_studio:
                studio.stop()

    app = FastAPI(title="Xianying Studio API", version="0.1.0", lifespan=lifespan,
                  description="REST surface of Xianying Studio (仙影). The Gradio API is at /gradio_api.")
    app.state.studio = studio

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        from fastapi.responses import JSONResponse

        from .api.common import json_safe

        return JSONResponse({"detail": json_safe(list(exc.errors()))}, 422)
    from .api import include_routes  # REST seeds, auth, metrics: before Gradio takes "/"
    mount_kwargs = include_routes(app, studio)

    @app.get("/health", tags=["operations"], summary="Liveness and queue overview")
    @handler("public")
    def health() -> dict:
        with connection():
            from .db import Job

            counts = {s: Job.select().where(Job.status == s).count() for s in ("queued", "running")}
        engines = {e.id: e.available()[0] for e in studio.engines.values()}
        return {"status": "ok", "jobs": counts, "engines": engines}

    @app.get("/files/{task_id}/{filename}", tags=["files"], summary="Download one file of a finished task")
    @handler("user")
    def job_file(task_id: str, filename: str, request: Request):
        with connection():
            try:
                job = studio.service.get(task_id, caller(request))
            except AppError as exc:
                raise HTTPException(status_code=exc.status, detail=exc.en) from None
            names = {}
            for out in job.outputs:
                for key in ("file", "thumbnail"):
                    if out.get(key):
                        names[out[key].rsplit("/", 1)[-1]] = out[key]
            rel = names.get(filename)
        path = contained_file(studio.settings.workspace, rel) if rel else None
        if path is None:
            raise HTTPException(status_code=404, detail="No such file for this task.")
        return FileResponse(path, filename=filename)

    # (demo.queue(...) would rebuild Gradio's app once more at startup; the env var sets the same limit)
    os.environ.setdefault("GRADIO_DEFAULT_CONCURRENCY_LIMIT", "16")
    # After every event Gradio summarises its last GRADIO_ANALYTICS_MAX_EVENTS (10000) events in a pandas
    # DataFrame for its monitoring page, which the studio does not enable: ~10 ms of CPU per call once
    # the studio has served 10000 calls. Summarise the last 1000, every 100 events.
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
    from .ui.session_state import install as lazy_sessions

    lazy_sessions()  # a new session (each plain API call) no longer builds every block's config on the loop
    demo, i18n = build_ui(studio)
    app.state.demo = demo  # tests/security enumerate its event handlers
    # Handlers return outputs, project faces and renders by their workspace path: Gradio copies each
    # into its cache (allowed_paths permits that copy) and the browser fetches the copy. The file route
    # itself serves only the cache (app.api.headers), never the workspace; the database, config,
    # secrets, queue and user files are blocked here as well.
    ws = studio.settings
    allowed = [str(p) for p in (ws.outputs_dir, ws.projects_dir, ws.staging_dir / "exports")]
    blocked = [str(ws.workspace / name) for name in ("studio.db", "studio.db-wal", "studio.db-shm", "config.yaml",
                                                       "rest.yaml", "users", "queue", "models")]
    blocked += [str(ws.queue_dir), str(studio.secrets.path)]
    gr.mount_gradio_app(app, demo, path="/", allowed_paths=allowed, blocked_paths=blocked,
                        max_file_size=MAX_UPLOAD_BYTES, footer_links=["api", "settings"], i18n=i18n, css=CSS,
                        show_error=True, **mount_kwargs)
    from .api.headers import SecureHeadersMiddleware

    app.add_middleware(SecureHeadersMiddleware)  # outermost: gates Gradio's file route, sets headers
    return app
