"""Projects over REST: draft a project from a chapter.

    POST /api/v1/projects/draft                {text, project?, after_scene?, scenes?, seconds?, engine?, title?,
                                               wait?} or {task_id, project?, after_scene?}
    POST /api/v1/projects/{project_id}/draft   the same, into that project (after ``after_scene`` or at the end)
        → 200 {project, scenes_added, characters_added, warnings, task_id, status: "done"}
        → 202 {project: null, task_id, status: "queued"|"running", warnings} when an LLM draft is not
          finished within ``wait`` seconds (default 600): post ``{task_id}`` again once it is.

    GET  /api/v1/projects/{project_id}/plan?scenes=s1,s2&lang=zh
        → 200 the episode's plan before it renders: each step reused / rendered / waiting for
          another step, its engine and estimate, and the totals (``app.episode_estimate.preview``)

``engine``: ``offline`` (default: the rule-based splitter) or a script engine (``dashscope-script``,
``zhipu-script``, ``ark-script``, ``llm-script``): then a ``script`` job runs on the queue, billed to
the caller. Errors: ``{"detail": "...", "code": "..."}`` with 4xx/5xx; a body that does not fit
(non-finite numbers, text over 40,000 characters) is a 422.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.drafts import MAX_TEXT, SLUG, DraftService

from .common import Ctx, ctx, seed_route, validation_text


def render(request, status: int, detail, kind: str):
    if kind == "validation":
        return JSONResponse({"detail": validation_text(detail), "code": "invalid_request"}, 422)
    return JSONResponse({"detail": detail, "code": kind}, status)


class DraftBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"text": "夜色如墨，青云山笼罩在薄雾之中。韩立独自站在山门前……", "scenes": 8},
        {"text": "……", "project": "my-series", "after_scene": "s003", "seconds": 60}]})

    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    project: str | None = Field(None, pattern=SLUG)
    after_scene: str | None = Field(None, pattern=SLUG)
    scenes: int | None = Field(None, ge=1, le=200)
    seconds: float | None = Field(None, ge=5, le=3600)
    engine: str | None = Field(None, max_length=64)
    title: str | None = Field(None, max_length=200)
    wait: float = Field(600.0, ge=0, le=900)
    task_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")


class DraftResult(BaseModel):
    project: str | None
    scenes_added: list[str]
    characters_added: list[str]
    warnings: list[str]
    task_id: str | None = None
    status: str = "done"


def answer(result: dict):
    return result if result["status"] == "done" else JSONResponse(result, 202)


def build(studio) -> APIRouter:
    router = APIRouter(prefix="/api/v1/projects", tags=["projects"], route_class=seed_route(render))

    made: list[DraftService] = []  # one service (and project store, with its write locks) per app

    def drafts(c: Ctx) -> DraftService:
        if not made:
            from app.episodes import EpisodeService

            made.append(DraftService(c.service, EpisodeService(c.service).access))
        return made[0]

    @router.post("/draft", response_model=DraftResult, summary="Draft a new project from a chapter")
    def draft_new(body: DraftBody, c: Ctx = Depends(ctx)):
        return answer(drafts(c).draft(body.model_dump(), c.principal, source="api"))

    @router.post("/{project_id}/draft", response_model=DraftResult,
                 summary="Draft scenes from a chapter into a project, after a scene or at the end")
    def draft_into(project_id: str, body: DraftBody, c: Ctx = Depends(ctx)):
        return answer(drafts(c).draft({**body.model_dump(), "project": project_id}, c.principal, source="api"))

    @router.get("/{project_id}/plan", summary="What rendering the project would run, reuse and cost")
    def plan(project_id: str = Path(..., pattern=SLUG),
             scenes: str | None = Query(None, max_length=4000, pattern=r"^[A-Za-z0-9_,-]*$"),
             lang: str = Query("en", pattern="^(en|zh)$"), c: Ctx = Depends(ctx)):
        from app.episode_estimate import preview
        from app.episodes import EpisodeService

        wanted = [s for s in (scenes or "").split(",") if s] or None
        return preview(EpisodeService(c.service), project_id, c.principal, wanted, lang)

    return router
