"""Wire the REST layer into the FastAPI app (called by ``create_app`` before Gradio is mounted)."""

from __future__ import annotations

from fastapi import FastAPI

from . import projects, seed000, seed001, seed002, seed003, seed004, session
from .middleware import SecurityMiddleware, gradio_user

OPENAPI_DESCRIPTION = """
REST surface of Xianying Studio (仙影). Scripts written for the five seed services work after
changing the base URL (and the key): seed 000 (`/api/v1/images|videos/generate`, `/api/v1/tasks`),
seed 001 (`/video/*`), seed 002 (`/api/v1/tasks/`), seed 003 (`/api/v1/videos/tasks`) and
seed 004 (`/aigc/*`). Send `Authorization: Bearer <key>` when the studio requires keys. The Gradio
API (gradio_client) is at `/gradio_api`. See docs/rest.md.
"""


def include(app: FastAPI, studio) -> dict:
    """Add the middleware and routes; return the keyword arguments for ``gr.mount_gradio_app``."""
    runtime = getattr(studio, "ops", None)
    if runtime is None:
        from .runtime import ApiRuntime

        runtime = studio.ops = ApiRuntime(studio)
    runtime.check_bind()
    app.description = OPENAPI_DESCRIPTION
    app.add_middleware(SecurityMiddleware, runtime=runtime)
    app.include_router(session.build(runtime))
    app.include_router(seed000.build(studio))
    app.include_router(seed001.build())
    app.include_router(seed002.build())
    app.include_router(seed003.build(studio))
    app.include_router(seed004.build())
    app.include_router(projects.build(studio))
    return {"auth_dependency": gradio_user}
