"""Rendering a project into an episode: one parent job, a child job per scene step, a stitch job.

    EpisodeService(service, store)
        plan(project_id, scenes=None, name=None)        -> EpisodePlan (checked; nothing runs)
        render(project_id, scenes=None, name=None, ...) -> the parent Job (kind "episode")
        episode_status(job_id) / project_status(project_id) / renders(project_id)
    render_video_request(episodes, body, ...)           seed 000 ``POST /api/v1/videos/generate``
    execute(runner, job, token)                          the runner's entry for kinds episode / stitch

The parent advances as a state machine (``episode_steps``); scene steps are ordinary jobs
(``JobService.submit`` with ``parent`` and ``project``), so the Queue shows them under it.
The stitch job writes ``projects/<id>/renders/<name>_v<N>.mp4`` and a JSON sidecar beside it;
versions are never overwritten.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from profiles.plan import EpisodePlan, plan_episode
from profiles.schema import SLUG
from profiles.store import ProjectStore

from . import episode_render, episode_steps, jobstate
from .access import Principal
from .db import TERMINAL, Job, db
from core.errors import AppError, Cancelled, NotFound, ValidationError
from core.media import atomic_write_json, video_thumbnail
from core.platform import replace_with_retry
from core.stitch import Clip

log = logging.getLogger(__name__)


class _EpisodeEngine:
    """What the admission hook (quotas) sees for a parent job: one video."""

    id, kind, tasks = episode_steps.EPISODE, episode_steps.EPISODE, ("t2v",)


def execute(runner, job: Job, token: int | None) -> None:
    if job.kind == episode_steps.STITCH:
        run_stitch(runner, job)
    else:
        episode_steps.advance(runner, job, token)


class EpisodeService:
    def __init__(self, service, store: ProjectStore | None = None):
        from .projects import ProjectAccess

        self.service = service
        self.settings = service.settings
        self.store = store or ProjectStore(service.settings.projects_dir)
        self.access = ProjectAccess(self.store)

    # --- checking and planning -----------------------------------------------------------
    def check_request(self, request: dict, images: list[tuple[str, Path]]) -> None:
        """Everything ``JobService.submit`` checks, with stand-in files for images that do not exist yet."""
        from engines.base import EngineRequest, ImageInput

        _req, engine, params, _task = self.service.validate(request)
        probe = EngineRequest(job_id="", prompt=request.get("prompt", ""),
                              negative_prompt=request.get("negative_prompt", ""), params=params,
                              workdir=self.settings.staging_dir,
                              images=[ImageInput(role=role, path=path) for role, path in images])
        engine.check(probe)

    def plan(self, project_id: str, scenes: list[str] | None = None, name: str | None = None) -> EpisodePlan:
        if name is not None and not SLUG.match(name):
            raise ValidationError("The episode name may use letters, digits, '-' and '_'.",
                                  "剧集名称只能使用字母、数字、“-”和“_”。")
        project = self.store.get(project_id)
        return plan_episode(project, self.service.engines, self.check_request, scenes, name)

    # --- rendering -----------------------------------------------------------------------
    def render(self, project_id: str, principal: Principal, scenes: list[str] | None = None,
               name: str | None = None, *, source: str = "ui") -> Job:
        """Plan and queue an episode of a project the caller may change; it is theirs and counts
        against their quota."""
        self.access.check_write(project_id, principal)
        plan = self.plan(project_id, scenes, name)

        def admit(user: str) -> None:
            if self.service.admission is not None:
                self.service.admission(user=user, engine=_EpisodeEngine(), task="episode", parent=None,
                                       params={"width": plan.width, "height": plan.height, "fps": plan.fps,
                                               "duration": plan.duration, "scenes": len(plan.scenes)})

        return self.service.submit_step(
            episode_steps.EPISODE, principal, prompt=f"{plan.title} · {plan.name}",
            params={"project": plan.project, "name": plan.name, "scenes": [s.scene for s in plan.scenes],
                    "fps": plan.fps, "resolution": f"{plan.width}x{plan.height}", "upscale": plan.upscale},
            request={"plan": plan.to_json()}, project=project_id, source=source, admit=admit)

    # --- views ---------------------------------------------------------------------------
    def episode_status(self, job_id: str, principal: Principal) -> dict:
        job = self.service.get(job_id, principal)
        if job.kind != episode_steps.EPISODE:
            raise NotFound(f"Task {job_id} is not an episode.", f"任务 {job_id} 不是剧集。")
        out = self.service.status_dict(job)
        children = {c.id: c for c in Job.select().where(Job.parent == job.id)}
        state = job.info.get("episode") or {}
        scenes = []
        for scene in job.request["plan"]["scenes"]:
            steps = []
            for step in scene["steps"]:
                record = state.get("scenes", {}).get(scene["scene"], {}).get(step["step"])
                child = children.get(record["job"]) if record else None
                if record and child is None:
                    child = Job.get_or_none(Job.id == record["job"])
                steps.append({"step": step["step"], "engine": step["engine"], "task_id": record and record["job"],
                              "reused": bool(record and record["reused"]),
                              "status": child.status if child else "waiting",
                              "progress": round(child.progress, 1) if child else 0.0})
            scenes.append({"scene": scene["scene"], "duration": scene["duration"], "task": scene["task"],
                           "notes": scene["notes"], "steps": steps})
        out["scenes"] = scenes
        stitch_rec = state.get("stitch")
        out["stitch_task_id"] = stitch_rec["job"] if stitch_rec else None
        return out

    def episodes(self, project_id: str, principal: Principal, limit: int = 10) -> list[Job]:
        """The project's latest episodes that the caller may see."""
        query = Job.select().where(Job.project == project_id, Job.kind == episode_steps.EPISODE)
        if not principal.admin:
            query = query.where(Job.user == principal.user)
        return list(query.order_by(Job.created_at.desc()).limit(limit))

    def renders(self, project_id: str) -> list[dict]:
        """Every stitched version of the project (paths relative to the workspace), oldest first."""
        folder = self.store.folder(project_id) / "renders"
        out = []
        for path in sorted(folder.glob("*_v*.mp4")) if folder.is_dir() else []:
            m = re.match(r"^(.*)_v(\d+)\.mp4$", path.name)
            if m:
                ws = self.settings.workspace
                out.append({"name": m.group(1), "version": int(m.group(2)), "file": str(path.relative_to(ws)),
                            "sidecar": str(path.with_suffix(".json").relative_to(ws)), "bytes": path.stat().st_size})
        return sorted(out, key=lambda r: (r["name"], r["version"]))

    def project_status(self, project_id: str, principal: Principal) -> dict:
        project = self.store.get(self.access.check_read(project_id, principal))
        scenes = []
        for index, scene in enumerate(project.scenes):
            prompt, negative = project.composed(scene)
            entry = {"id": scene.id, "title": scene.title, "duration": scene.duration,
                     "characters": scene.characters, "prompt": scene.prompt, "composed_prompt": prompt,
                     "negative_prompt": negative, "engine": scene.engine}
            try:
                from profiles.plan import plan_scene

                sp = plan_scene(project, self.service.engines, index, scene, self.check_request)
                entry.update(task=sp.task, steps=[f"{s.step}: {s.engine}" for s in sp.steps], notes=sp.notes,
                             plan_error=None)
            except AppError as exc:
                entry.update(task=None, steps=[], notes=[], plan_error=exc.en, plan_error_zh=exc.zh)
            scenes.append(entry)
        episodes = []
        for job in self.episodes(project_id, principal):
            episodes.append({"task_id": job.id, "status": job.status, "progress": round(job.progress, 1),
                             "message": job.message, "error": job.error, "render": job.info.get("render"),
                             "created_at": job.created_at})
        return {"id": project.id, "title": project.config.title, "style": project.config.style,
                "config": project.config.model_dump(mode="json"),
                "characters": {cid: c.model_dump(mode="json") for cid, c in project.characters.items()},
                "scenes": scenes, "episodes": episodes, "renders": self.renders(project_id)}


# --- the stitch job ------------------------------------------------------------------------
def publish(src: Path, folder: Path, name: str) -> tuple[Path, int]:
    """Move ``src`` to ``folder/<name>_v<N>.mp4`` with the next free N; never replaces a file."""
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in folder.glob(f"{name}_v*.mp4")
             if (m := re.match(rf"^{re.escape(name)}_v(\d+)\.mp4$", p.name))]
    n = max(taken, default=0) + 1
    while True:
        final = folder / f"{name}_v{n}.mp4"
        try:
            os.link(src, final)  # atomic and exclusive: fails if the name is taken
        except FileExistsError:
            n += 1
        except OSError:  # no hard links here (FAT, some network drives): reserve the name, then replace
            try:
                with open(final, "xb"):
                    pass
            except FileExistsError:
                n += 1
                continue
            replace_with_retry(src, final)
            return final, n
        else:  # published; the staged name goes with the staging folder if Windows holds it now
            with contextlib.suppress(OSError):
                src.unlink()
            return final, n


def sidecar(parent: Job, stitch_job: Job, result: dict) -> dict:
    plan = parent.request["plan"]
    state = parent.info.get("episode", {})
    scenes = []
    for scene in plan["scenes"]:
        steps = []
        for step in scene["steps"]:
            record = state.get("scenes", {}).get(scene["scene"], {}).get(step["step"], {})
            child = Job.get_or_none(Job.id == record.get("job"))
            steps.append({"step": step["step"], "task_id": record.get("job"), "engine": step["engine"],
                          "reused": record.get("reused", False), "input_hash": record.get("hash"),
                          "seed": (child.params.get("seed") if child else None),
                          "params": child.params if child else step["request"]["params"],
                          "prompt": child.prompt if child else step["request"]["prompt"],
                          "negative_prompt": child.negative_prompt if child else "",
                          "output": child.outputs[0]["file"] if child and child.outputs else None})
        scenes.append({"scene": scene["scene"], "title": scene["title"], "duration": scene["duration"],
                       "seed": scene["seed"], "task": scene["task"], "transition": scene["transition"],
                       "notes": scene["notes"], "steps": steps})
    return {"project": plan["project"], "title": plan["title"], "name": plan["name"], "episode_task_id": parent.id,
            "stitch_task_id": stitch_job.id, "fps": result["fps"], "width": result["width"],
            "height": result["height"], "frames": result["frames"], "duration": result["duration"],
            "upscale": plan["upscale"], "transition_duration": plan["transition_duration"], "scenes": scenes,
            "audio": result.get("audio", False), "subtitles": {k: result.get(k) for k in ("srt", "ass", "cues")},
            "otio": result.get("otio"), "jianying": result.get("jianying"), "timeline": result.get("timeline"),
            "notes": result.get("notes", []),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def run_stitch(runner, job: Job) -> None:
    if not runner.claim(job):
        return
    job = Job.get_by_id(job.id)
    fence = job.fence  # the success below counts only while this run holds the job
    parent = Job.get_by_id(job.parent)
    plan = parent.request["plan"]
    ws = runner.settings.workspace
    work = runner.workdir(job.id)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        clips = [Clip(ws / c["file"], c["duration"], c["transition"]) for c in job.request["clips"]]
        meta = {"title": plan["title"], "comment": f"xianying episode {parent.id}"}
        result = episode_render.render_job(runner.settings, plan, clips, job.request.get("speech") or {}, work,
                                           metadata=meta, progress=runner.progress_fn(job.id),
                                           cancelled=runner.cancelled_fn(job.id))
        folder = runner.settings.projects_dir / plan["project"] / "renders"
        final, version = publish(work / "episode.mp4", folder, plan["name"])
        result.update(episode_render.publish_beside(result, final, ws))
        thumb = video_thumbnail(final, final.with_suffix(".jpg"))
        atomic_write_json(final.with_suffix(".json"), sidecar(parent, job, result))
        rel = lambda p: str(p.relative_to(ws))  # noqa: E731
        render = {"file": rel(final), "sidecar": rel(final.with_suffix(".json")), "version": version, **result}
        outputs = [{"file": rel(final), "kind": "video", "thumbnail": rel(thumb), "width": result["width"],
                    "height": result["height"], "frames": result["frames"], "fps": result["fps"],
                    "meta": {"sidecar": render["sidecar"], "version": version}}]
        jobstate.succeed(job.id, fence, {"outputs": outputs, "output_dir": rel(folder),
                                         "info": {**job.info, "render": render}, "message": "done"})
    except Cancelled:
        if runner.stopping.is_set() and not Job.get_by_id(job.id).cancel_requested:
            runner.requeue(job, "the studio stopped; the stitch runs again at the next start")
        else:
            runner.fail(job, Cancelled(), status="cancelled")
    except AppError as exc:
        runner.fail(job, exc)
    except Exception as exc:  # ffmpeg/PyAV trouble: a message, not a traceback
        log.exception("stitch %s failed", job.id)
        runner.fail(job, AppError(f"Stitching failed: {type(exc).__name__}: {exc}", f"拼接失败：{exc}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    parent = Job.get_by_id(parent.id)
    if parent.status not in TERMINAL:
        runner.service.enqueue(parent, token=parent.polls)  # wake the episode now rather than at its next step


# --- seed 000: POST /api/v1/videos/generate -----------------------------------------------
def render_video_request(episodes: EpisodeService, body: dict, principal: Principal, *,
                         source: str = "rest:000", engine: str | None = None) -> Job:
    """Build an ad-hoc project ``api-<hex>`` from a seed 000 body and render it; returns the parent job.

    ``body``: ``{"scenes": [{"id", "prompt", "duration", "negative_prompt"?, "seed"?}],
    "video_config": {"fps", "resolution": "WxH", "upscale", "num_inference_steps"?}}``. ``engine`` (optional)
    is the project's ``default_engine`` (and gets ``num_inference_steps`` when given). A body that cannot render leaves no project behind.
    """
    config = dict(body.get("video_config") or {})
    scenes, seen = [], set()
    for i, raw in enumerate(body.get("scenes") or []):
        sid = str(raw.get("id", i))
        sid = sid if SLUG.match(sid) and sid not in seen else f"scene-{i}"
        seen.add(sid)
        scene = {"id": sid, "prompt": raw.get("prompt", ""), "duration": raw.get("duration", 5.0)}
        for key in ("negative_prompt", "seed"):
            if raw.get(key) not in (None, ""):
                scene[key] = raw[key]
        scenes.append(scene)
    project_id = f"api-{uuid.uuid4().hex[:12]}"
    store = episodes.store
    extra = {"fps": config.get("fps", 24), "resolution": config.get("resolution", "1280x768"),
             "upscale": bool(config.get("upscale", False)), "style": "none"}
    if engine:
        extra["default_engine"] = engine
        if config.get("num_inference_steps"):
            extra["engine_params"] = {engine: {"num_inference_steps": config["num_inference_steps"]}}
    episodes.access.create(project_id, f"API video {project_id[4:]}", principal, **extra)
    try:
        store.edit_scenes(project_id, lambda _old: scenes)
        return episodes.render(project_id, principal, source=source)
    except AppError:
        shutil.rmtree(store.folder(project_id), ignore_errors=True)
        episodes.access.forget(project_id)
        raise
