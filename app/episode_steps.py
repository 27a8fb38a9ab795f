"""The episode state machine, driven by the job runner (``JobRunner.execute`` hands it the jobs
of kind ``episode`` and ``stitch``).

An episode is a parent job (engine ``episode``, io lane) whose request holds the checked plan
(``profiles.plan.EpisodePlan``). Each of its steps looks once at the children, starts what has
become possible, and schedules the next step — it never waits in a worker, like a cloud poll.
The state (which job does which scene step) lives in the parent row's ``info["episode"]`` and
is written right after each child is submitted, so after a crash the next step carries on
where the last one stopped. Steps carry a token (the row's ``polls``): only the newest
scheduled step acts, so a resumed episode never runs twice.

A scene step whose resolved inputs — engine, parameters with the seed, prompt, negative
prompt, the content of its input images — hash the same as a finished job of the project
reuses that job instead of running again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from profiles.plan import REUSE_ENGINE, STILL_PLACEHOLDER, EpisodePlan, last_frame_of

from . import jobstate
from .access import SYSTEM, Principal
from .db import TERMINAL, Job
from core.errors import AppError, EngineError
from core.hashing import sha256_file

log = logging.getLogger(__name__)

EPISODE, STITCH = "episode", "stitch"
IDLE_DELAY_S = 1.0
MAX_STEP_ERRORS = 5
_HASHES: dict[tuple, str] = {}


# --- input hashes --------------------------------------------------------------------------
def file_sha(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def input_hash(engine: str, params: dict, prompt: str, negative: str, images: list[tuple[str, str]]) -> str:
    """``images``: (role, content sha256 or URL) in request order."""
    blob = json.dumps({"engine": engine, "params": params, "prompt": prompt, "negative": negative,
                       "images": sorted(images)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def row_hash(service, job: Job) -> str | None:
    images = []
    for image in job.images:
        if image.get("url"):
            images.append((image["role"], image["url"]))
            continue
        path = service.settings.workspace / image["path"]
        if not path.is_file():
            return None
        images.append((image["role"], file_sha(path)))
    return input_hash(job.engine, job.params, job.prompt, job.negative_prompt, images)


def request_hash(service, request: dict) -> str:
    req, engine, params, _task = service.validate(request)
    images = []
    for role, value in (("first_frame", req.image), ("last_frame", req.last_image),
                        *(("reference", v) for v in req.reference_images)):
        if value is None:
            continue
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            images.append((role, value))
        elif isinstance(value, str) and value.startswith("job:"):
            images.append((role, file_sha(service.image_of_job(value[4:], SYSTEM))))
        else:
            images.append((role, file_sha(Path(value))))
    return input_hash(engine.id, params.model_dump(mode="json"), req.prompt, req.negative_prompt, images)


def outputs_exist(service, job: Job) -> bool:
    ws = service.settings.workspace
    return bool(job.outputs) and all((ws / o["file"]).is_file() for o in job.outputs)


def find_reusable(service, parent: Job, engine: str, prompt: str, digest: str) -> tuple[Job | None, bool]:
    """(job, reused): this episode's own unfinished child for these inputs (a step submitted just before
    a crash), else a finished job of the project with the same inputs."""
    found = find_by_hash(service, parent.project, engine, prompt, digest, own=lambda job: job.parent == parent.id)
    return (found, found.parent != parent.id) if found is not None else (None, False)


def find_by_hash(service, project: str, engine: str, prompt: str, digest: str, own=lambda job: False) -> Job | None:
    """The newest job of ``project`` with these inputs: finished (with its files), or unfinished and ``own(job)``."""
    query = (Job.select().where(Job.project == project, Job.engine == engine, Job.prompt == prompt,
                                Job.status.in_(("queued", "running", "succeeded")), Job.kind != EPISODE)
             .order_by(Job.created_at.desc()).limit(100))
    return first_match(service, query, digest, own)


def finished_by_request(project: str) -> dict[tuple[str, str], list[Job]]:
    """The project's finished step jobs by (engine, prompt), newest first: one query for a whole plan."""
    out: dict[tuple[str, str], list[Job]] = {}
    for job in (Job.select().where(Job.project == project, Job.status == "succeeded", Job.kind != EPISODE)
                .order_by(Job.created_at.desc())):
        out.setdefault((job.engine, job.prompt), []).append(job)
    return out


def first_match(service, jobs, digest: str, own=lambda job: False) -> Job | None:
    """The first of ``jobs`` (newest first) with these inputs: finished with its files, or unfinished and ``own``."""
    for job in jobs:
        if job.status != "succeeded" and not own(job):
            continue
        if job.status == "succeeded" and not outputs_exist(service, job):
            continue
        if row_hash(service, job) == digest:
            return job
    return None


def is_speech(step: str) -> bool:
    """A scene's ``tts<index>`` step: independent of the picture steps and of each other."""
    return step.startswith("tts")


def speech_job(service, principal: Principal, request: dict) -> tuple[Job, bool]:
    """One line of speech for ``principal`` (the Projects tab's preview): (job, reused). A finished line with
    the same inputs in the project, or one of theirs still on its way, is handed back instead of a new job."""
    digest = request_hash(service, request)
    found = find_by_hash(service, request.get("project"), request["engine"], request["prompt"], digest,
                         own=lambda job: job.user == principal.user)
    if found is not None:
        return found, True
    return service.submit(request, principal, source="project"), False


# --- the parent ----------------------------------------------------------------------------
def _take_turn(runner, job: Job, token: int | None) -> Job | None:
    """Claim a queued parent, or check the step's token; None when another step owns the turn."""
    if job.status == "queued":
        if not runner.claim(job):
            return None
        job = Job.get_by_id(job.id)
        token = None
    expected = job.polls if token is None else token
    return Job.get_by_id(job.id) if jobstate.take_turn(job.id, expected) else None


def _save(job: Job, state: dict, **fields) -> None:
    jobstate.save_info(job.id, {"episode": state}, **fields)


def advance(runner, job: Job, token: int | None) -> None:
    job = _take_turn(runner, job, token)
    if job is None:
        return
    try:
        _advance(runner, job)
    except Exception as exc:  # a bug or a locked database: try again a few times, then fail with a message
        log.exception("episode %s: step failed", job.id)
        errors = Job.get_by_id(job.id).info.get("_step_errors", 0) + 1
        if errors >= MAX_STEP_ERRORS:
            runner.fail(Job.get_by_id(job.id), AppError(f"The episode could not continue: {type(exc).__name__}: {exc}",
                                                         f"剧集无法继续：{type(exc).__name__}: {exc}"))
            return
        jobstate.save_info(job.id, {"_step_errors": errors})
        runner.service.enqueue(Job.get_by_id(job.id), delay=2.0 * errors, token=job.polls)


def _advance(runner, job: Job) -> None:
    service = runner.service
    plan = EpisodePlan.from_json(job.request["plan"])
    state = job.info.get("episode") or {"scenes": {}, "stitch": None}
    if job.cancel_requested:
        _cancel(service, job, state)
        return
    try:
        changed, failure = _start_ready_steps(service, job, plan, state)
    except AppError as exc:
        _finish_parent(runner, job, state, error=exc)
        return
    if failure is not None:
        _finish_parent(runner, job, state, error=failure)
        return
    done = all(_status(state["scenes"][s.scene].get(st.step)) == "succeeded"
               for s in plan.scenes for st in s.steps if s.scene in state["scenes"])
    done = done and len(state["scenes"]) == len(plan.scenes)
    if done and state.get("stitch") is None:
        state["stitch"] = {"job": _submit_stitch(service, job, plan, state)}
        _save(job, state)
        changed = True
    stitch = Job.get_or_none(Job.id == state["stitch"]["job"]) if state.get("stitch") else None
    if stitch is not None and stitch.status == "succeeded":
        _finish_parent(runner, job, state, stitch=stitch)
        return
    if stitch is not None and stitch.status in ("failed", "cancelled"):
        _finish_parent(runner, job, state, error=EngineError(
            f"Stitching the episode failed: {stitch.error or stitch.status}", f"拼接失败：{stitch.error_zh or stitch.status}"))
        return
    progress, message = _progress(plan, state)
    _save(job, state, progress=progress, message=message)
    service.enqueue(Job.get_by_id(job.id), delay=None if changed else IDLE_DELAY_S, token=job.polls)


def _status(record: dict | None) -> str | None:
    if not record:
        return None
    child = Job.get_or_none(Job.id == record["job"])
    return child.status if child else "failed"


def _start_ready_steps(service, job: Job, plan: EpisodePlan, state: dict):
    """Submit (or reuse) every step whose inputs are ready; (changed, failure or None)."""
    changed = False
    for scene in plan.scenes:
        records = state["scenes"].setdefault(scene.scene, {})
        blocked = False  # a picture step waits for the one before it; speech waits for nothing
        for step in scene.steps:
            speech = is_speech(step.step)
            if blocked and not speech:
                continue
            record = records.get(step.step)
            if record is None:
                request = dict(step.request)
                if request.get("image") == STILL_PLACEHOLDER:
                    still = records.get("still")
                    if _status(still) != "succeeded":
                        blocked = True
                        continue
                    request["image"] = f"job:{still['job']}"
                previous = last_frame_of(request.get("image"))
                if previous is not None:
                    clip = state["scenes"].get(previous, {}).get("clip")
                    if _status(clip) != "succeeded":
                        blocked = True
                        continue
                    request["image"] = str(last_frame_file(service, Job.get_by_id(clip["job"])))
                record = (_reuse_job(service, job, request["reuse"]) if request.get("engine") == REUSE_ENGINE
                          else _start_step(service, job, request))
                records[step.step] = record
                _save(job, state)
                changed = True
            child = Job.get_or_none(Job.id == record["job"])
            status = child.status if child else "failed"
            if status in ("failed", "cancelled"):
                why = (child.error if child else None) or status
                what = f"line {step.step[3:]}: speech" if speech else step.step
                what_zh = f"第 {step.step[3:]} 句语音" if speech else step.step
                return changed, EngineError(
                    f"Scene '{scene.scene}' ({what} on {step.engine}) {status}: {why} Fix the scene and render "
                    "again; finished scenes are reused.",
                    f"场景“{scene.scene}”（{step.engine} 上的 {what_zh}）失败：{(child.error_zh if child else None) or why}"
                    " 请修改场景后重新渲染；已完成的场景会被复用。")
            if status != "succeeded" and not speech:
                blocked = True
    return changed, None


def last_frame_file(service, clip: Job) -> Path:
    """The last frame of a finished clip as a PNG in the workspace (extracted once per clip job).

    A clip whose provider returned its last frame (Seedance ``return_last_frame``: an output of
    kind ``image`` with ``meta.role == "last_frame"``) gives that image as it came.
    """
    from core.media import last_frame, write_png

    for output in clip.outputs or []:
        if output.get("kind") == "image" and (output.get("meta") or {}).get("role") == "last_frame":
            given = service.settings.workspace / output["file"]
            if given.is_file():
                return given
    path = service.settings.staging_dir / "last-frames" / f"{clip.id}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(last_frame(service.settings.workspace / clip.outputs[0]["file"]), path)
    return path


def _reuse_job(service, parent: Job, job_id: str) -> dict:
    """``from: job:<id>``: a finished video job the episode's owner may see, taken as the scene's clip."""
    try:
        found = service.get(job_id, Principal.acting_for(parent.user))
    except AppError:
        found = None
    if (found is None or found.status != "succeeded" or not outputs_exist(service, found)
            or not str(found.outputs[0]["file"]).lower().endswith((".mp4", ".webm", ".mov"))):
        raise EngineError(f"job:{job_id} is not a finished video job of yours (or its files are gone). Fix: name "
                          "another job in the scene's 'from', or remove it to render the scene.",
                          f"job:{job_id} 不是你已完成的视频任务（或文件已不在）。请在场景的 “from” 中换一个任务，"
                          "或删除它以重新渲染。")
    return {"job": found.id, "engine": found.engine, "hash": None, "reused": True}


def _start_step(service, parent: Job, request: dict) -> dict:
    digest = request_hash(service, request)
    found, reused = find_reusable(service, parent, request["engine"], request["prompt"], digest)
    if found is None:
        found = service.submit(request, Principal.acting_for(parent.user), source="project", parent=parent.id)
        reused = False
    return {"job": found.id, "engine": found.engine, "hash": digest, "reused": reused}


def _progress(plan: EpisodePlan, state: dict) -> tuple[float, str]:
    units, done, running = 0, 0.0, None
    for scene in plan.scenes:
        for step in scene.steps:
            units += 1
            record = state["scenes"].get(scene.scene, {}).get(step.step)
            child = Job.get_or_none(Job.id == record["job"]) if record else None
            if child is not None:
                done += 100.0 if child.status == "succeeded" else child.progress
                if child.status == "running" and running is None:
                    running = f"scene {scene.scene}: {step.step} on {step.engine}"
    units += 1
    if state.get("stitch"):
        child = Job.get_or_none(Job.id == state["stitch"]["job"])
        done += child.progress if child else 0
        running = running or "stitching"
    return min(99.0, done / units), running or "waiting for the queue"


def speech_outputs(plan: EpisodePlan, state: dict) -> dict:
    """Per scene, the synthesised speech of its lines: the first output of each finished step named
    ``tts<line index>`` (``{"file", "duration", "timings"?}``), with the line's text, speaker and ``at``."""
    out = {}
    for scene in plan.scenes:
        records = state["scenes"].get(scene.scene, {})
        lines = []
        for line in scene.speech:
            record = records.get(f"tts{line['index']}")
            child = Job.get_or_none(Job.id == record["job"]) if record else None
            if child is None or child.status != "succeeded" or not child.outputs:
                continue
            first = child.outputs[0]
            meta = first.get("meta") or {}
            lines.append({"file": first["file"], "duration": first.get("duration", meta.get("duration")),
                          "timings": first.get("timings", meta.get("timings")) or [], "text": line["text"],
                          "speaker": line["speaker"], "at": line["at"], "job": child.id})
        if lines:
            out[scene.scene] = lines
    return out


def _submit_stitch(service, parent: Job, plan: EpisodePlan, state: dict) -> str:
    clips = []
    for scene in plan.scenes:
        child = Job.get_by_id(state["scenes"][scene.scene]["clip"]["job"])
        clips.append({"scene": scene.scene, "job": child.id, "file": child.outputs[0]["file"],
                      "duration": scene.duration, "transition": scene.transition})
    stitch = service.submit_step(STITCH, Principal.acting_for(parent.user), prompt=f"{plan.title} · stitch",
                                 params={"clips": len(clips), "fps": plan.fps},
                                 request={"clips": clips, "speech": speech_outputs(plan, state)},
                                 project=parent.project, parent=parent.id, source="project")
    return stitch.id


def _cancel(service, job: Job, state: dict) -> None:
    # every unfinished child, recorded in the state or not (a crash may have lost the record)
    for child in Job.select().where(Job.parent == job.id, Job.status.not_in(TERMINAL)):
        service.cancel(child.id, SYSTEM)
    jobstate.cancelled_now(job.id, "episode cancelled", {**job.info, "episode": state})


def _finish_parent(runner, job: Job, state: dict, stitch: Job | None = None, error: AppError | None = None) -> None:
    _save(job, state)
    if error is not None:
        runner.fail(job, error)
        return
    render = stitch.info.get("render", {})
    jobstate.succeed(job.id, job.fence, {"outputs": stitch.outputs, "output_dir": stitch.output_dir,
                                         "info": {**Job.get_by_id(job.id).info, "render": render},
                                         "message": f"done: {render.get('file', '')}"})
