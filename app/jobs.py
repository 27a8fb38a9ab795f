"""The job service: submit · submit_many · get · list · cancel · retry · rerun. The only place with rules.

Every interface (Gradio UI, Gradio API, REST) is a thin layer over this class. A job row is
written and committed first, then the job is enqueued; the row is the source of truth.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError as PydanticError

from engines.base import reason_text

from . import jobstate
from .access import Principal, not_found
from .db import Job, db
from core.errors import AppError, Conflict, NotAvailable, NotFound, ValidationError, pydantic_message
from .inputs import JOB_ID, SubmitRequest, adopt_staged, resolve_image, speech_request, staging, task_for

log = logging.getLogger(__name__)

FILTER_KEYS = {"status", "engine", "project", "parent", "user", "kind", "limit", "offset"}
MAX_BATCH = 500  # requests in one submit_many call


@dataclass(frozen=True)
class Checked:
    """A request ``JobService.prepare`` found ready to store."""

    req: SubmitRequest
    engine: object
    params: object
    task: str
    images: list[dict]


def numbered(exc: AppError, n: int, note_en: str = "", note_zh: str = "") -> AppError:
    """``exc`` naming the ``n``-th request of a batch (from 1): same class, status and fields."""
    out = type(exc).__new__(type(exc))
    out.__dict__.update(exc.__dict__)
    out.en, out.zh = f"Request {n}: {exc.en}{note_en}", f"第 {n} 个请求：{exc.zh}{note_zh}"
    out.args = (out.en,)
    return out


def public_image(image: dict) -> dict:
    """An input image as API answers show it: a stored file under ``file`` (workspace-relative), as
    outputs do; a ``path`` key would make gradio_client take the dict for a file to download."""
    if "path" not in image:
        return image
    shown = {k: v for k, v in image.items() if k != "path"}
    shown["file"] = image["path"]
    return shown


def non_finite(value, where: str, depth: int = 0) -> str | None:
    """Where ``value`` holds an infinite or NaN number (``params.x``), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    if depth < 8 and isinstance(value, dict):
        items = ((f"{where}.{str(k)[:40]}", v) for k, v in value.items())
    elif depth < 8 and isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((w for path, v in items if (w := non_finite(v, path, depth + 1)) is not None), None)


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds") if ts else None


class JobService:
    def __init__(self, settings, engines: dict, queue=None, admission=None):
        self.settings = settings
        self.engines = engines
        self.queue = queue  # the lanes (None: jobs are stored, not run)
        self.admission = admission  # the quota check, inside the submit transaction; raises to refuse
        self.handoff = None  # handoff(new jobs) -> the ones left for the queue (app.runner.JobRunner.hand_new)

    # --- engines --------------------------------------------------------------------
    def engines_info(self) -> list[dict]:
        out = []
        for engine in self.engines.values():
            ok, reason = engine.available()
            out.append({"id": engine.id, "kind": engine.kind, "tasks": list(engine.tasks),
                        "title": engine.title, "available": ok, "reason": str(reason),
                        "reason_zh": reason_text(reason, "zh"), "voices": engine.voices(),
                        "params_schema": engine.Params.model_json_schema()})
        return out

    def models_report(self) -> list[dict]:
        """Settings → Models: every local engine's weights (present, where, size, what is missing)."""
        from engines.local.weights import models_report

        return models_report(self.engines)

    def engine(self, engine_id: str):
        engine = self.engines.get(engine_id)
        if engine is None:
            known = ", ".join(sorted(self.engines))
            raise ValidationError(f"Unknown engine '{engine_id}'. Known engines: {known}.",
                                  f"未知引擎“{engine_id}”。可用引擎：{known}。")
        return engine

    # --- submit ---------------------------------------------------------------------
    def validate(self, request: dict):
        """Check a request completely; return (SubmitRequest, engine, params, task)."""
        if not isinstance(request, dict):
            raise ValidationError("The request must be a JSON object.", "请求必须是 JSON 对象。")
        try:
            req = SubmitRequest.model_validate(request)
        except PydanticError as exc:
            raise ValidationError(*pydantic_message(exc)) from exc
        if (where := non_finite(req.params, "params")) is not None:  # 1e400 reads as inf; JSON cannot store it
            raise ValidationError(f"{where}: must be a finite number.", f"{where}：必须是有限数值。")
        engine = self.engine(req.engine)
        task = task_for(req)
        if "tts" in engine.tasks:
            req, task = speech_request(req), "tts"
        elif "script" in engine.tasks:
            from .inputs import script_request

            req, task = script_request(req), "script"
        if task not in engine.tasks and not (task == "t2v" and "t2i" in engine.tasks):
            raise ValidationError(
                f"{engine.id} cannot do {task} (it does: {', '.join(engine.tasks)}).",
                f"{engine.id} 不支持 {task}（支持：{', '.join(engine.tasks)}）。")
        if task in ("t2v", "t2i") and not req.prompt.strip():
            raise ValidationError("Write a prompt first.", "请先填写提示词。")
        try:
            params = engine.Params.model_validate(req.params)
        except PydanticError as exc:
            raise ValidationError(*pydantic_message(exc)) from exc
        if "seed" in type(params).model_fields and params.seed is None:
            params = params.model_copy(update={"seed": secrets.randbelow(2**31)})
        return req, engine, params, task

    def submit(self, request: dict, principal: Principal, *, source: str = "api",
               parent: str | None = None, rerun_of: str | None = None, images: list[dict] | None = None) -> Job:
        """Check and store a job for ``principal`` (its user owns it and is billed), then enqueue it.

        ``images``: already resolved inputs (a re-run's own); otherwise the request's are resolved
        here, with the caller's rights (``job:<id>`` of their own jobs, their uploads)."""
        with staging(self.settings.staging_dir) as stage:  # what a refusal wrote goes with it
            checked = self.prepare(request, principal, images=images, stage=stage)
            with db.atomic("IMMEDIATE"):  # read-count-then-insert stays atomic for the admission hook
                job = self.store(checked, principal.user, source=source, parent=parent, rerun_of=rerun_of)
                adopt_staged(checked.images, self.settings.workspace)  # a failed move rolls the row back
        self.enqueue_many([job])
        return job

    def submit_many(self, requests: list, principal: Principal, *, source: str = "api") -> list[Job]:
        """Several requests, all or nothing: each is checked as ``submit`` checks one (an error names
        the request, from 1), then all rows are stored in one transaction (the quota counts the
        batch's own earlier rows), then all are enqueued. Returns the jobs in the requests' order."""
        if not isinstance(requests, list):
            raise ValidationError("Send a list of requests, e.g. [{\"engine\": ..., \"prompt\": ...}, ...].",
                                  "请发送请求列表，例如 [{\"engine\": ..., \"prompt\": ...}, ...]。")
        if not requests:
            raise ValidationError("The list of requests is empty.", "请求列表为空。")
        if len(requests) > MAX_BATCH:
            raise ValidationError(f"At most {MAX_BATCH} requests in one call (this one has {len(requests)}); "
                                  "split the list.",
                                  f"一次最多提交 {MAX_BATCH} 个请求（本次 {len(requests)} 个），请分批提交。")
        with staging(self.settings.staging_dir) as stage:
            checked = []
            for n, request in enumerate(requests, 1):
                try:
                    checked.append(self.prepare(request, principal, stage=stage))
                except AppError as exc:
                    raise numbered(exc, n) from exc
            with db.atomic("IMMEDIATE"):
                jobs = []
                for n, one in enumerate(checked, 1):
                    try:
                        jobs.append(self.store(one, principal.user, source=source))
                    except AppError as exc:  # a quota or limit: nothing of the batch is kept
                        before = (f" (requests 1-{n - 1} of this call count towards it; none of them was stored)",
                                  f"（本次调用的第 1-{n - 1} 个请求已计入；均未保存）") if n > 1 else ("", "")
                        raise numbered(exc, n, *before) from exc
                for one in checked:
                    adopt_staged(one.images, self.settings.workspace)
        self.enqueue_many(jobs)
        return jobs

    def prepare(self, request: dict, principal: Principal, *, images: list[dict] | None = None,
                stage: Path | None = None) -> "Checked":
        """Everything ``submit`` checks before its transaction: the request, its images (resolved with
        ``principal``'s rights unless given), the engine's availability and its own ``check``."""
        req, engine, params, task = self.validate(request)
        if images is None:  # bad input is named before "not available": it is the caller's to fix
            images = []
            for role, value in (("first_frame", req.image), ("last_frame", req.last_image),
                                *(("reference", v) for v in req.reference_images)):
                if value is not None:
                    images.append(resolve_image(value, role, self.settings.workspace,
                                                lambda ref: self.image_of_job(ref, principal),
                                                trusted=principal.trusted, stage=stage))
        ok, reason = engine.available()
        if not ok:
            raise NotAvailable(f"{engine.id} is not available: {reason}",
                               f"{engine.id} 不可用：{reason_text(reason, 'zh')}")
        from engines.base import EngineRequest

        probe = EngineRequest(job_id="", prompt=req.prompt, negative_prompt=req.negative_prompt,
                              params=params, workdir=self.settings.staging_dir,
                              images=self.image_inputs(images))
        engine.check(probe)
        return Checked(req, engine, params, task, images)

    def store(self, checked: "Checked", user: str | None, *, source: str, parent: str | None = None,
              rerun_of: str | None = None) -> Job:
        """The admission check and the row; call inside ``db.atomic("IMMEDIATE")``."""
        req, engine, params = checked.req, checked.engine, checked.params
        if self.admission is not None:
            self.admission(user=user, engine=engine, task=checked.task, params=params, parent=parent)
        return jobstate.create(
            engine=engine.id, kind=engine.kind, lane=engine.lane, task=checked.task,
            prompt=req.prompt, negative_prompt=req.negative_prompt,
            images=[{k: v for k, v in image.items() if k != "staged"} for image in checked.images],
            params=params.model_dump(mode="json"),
            request=req.model_dump(mode="json", exclude={"image", "last_image", "reference_images"}),
            project=req.project, parent=parent, user=user, source=source, rerun_of=rerun_of)

    def submit_step(self, kind: str, principal: Principal, *, prompt: str, params: dict, request: dict,
                    project: str | None, parent: str | None = None, source: str = "project",
                    admit=None) -> Job:
        """A job the studio itself runs (``kind``: ``episode`` parent or ``stitch`` step) rather than
        an engine. ``admit(user)`` runs inside the insert's transaction (an episode's quota check)."""
        with db.atomic("IMMEDIATE"):
            if admit is not None:
                admit(principal.user)
            job = jobstate.create(engine=kind, kind=kind, lane="io", task=kind, prompt=prompt, params=params,
                                  request=request, project=project, parent=parent, user=principal.user,
                                  source=source)
        self.enqueue(job)
        return job

    def enqueue(self, job: Job, delay: float | None = None, token: int | None = None,
                priority: int | None = None) -> None:
        if self.queue is None:
            return
        huey_id = self.queue.enqueue(job.lane, job.id, delay=delay, token=token, priority=priority)
        jobstate.set_huey_id(job.id, huey_id)

    def enqueue_many(self, jobs: list[Job]) -> None:
        """Enqueue new jobs: one queue transaction per lane where the lane can (SQLite), and their
        queue ids written in one transaction. With a cloud process running, its new jobs go to it
        directly (``handoff``) and have no queue id."""
        if self.queue is None or not jobs:
            return
        if self.handoff is not None:
            jobs = self.handoff(jobs)
            if not jobs:
                return
        ids = {}
        for lane in dict.fromkeys(job.lane for job in jobs):
            ours = [job.id for job in jobs if job.lane == lane]
            ids.update(zip(ours, self.queue.enqueue_many(lane, ours)))
        with db.atomic():
            jobstate.set_huey_ids(ids)

    # --- read -----------------------------------------------------------------------
    def row(self, job_id: str) -> Job:
        """The job row, whoever owns it: for the studio's own workers (runner, episodes, team)."""
        if not isinstance(job_id, str) or not JOB_ID.match(job_id.strip()):
            raise not_found("task", "任务", job_id)
        job = Job.get_or_none(Job.id == job_id.strip())
        if job is None:
            raise not_found("task", "任务", job_id)
        return job

    def get(self, job_id: str, principal: Principal) -> Job:
        """The job, when ``principal`` may see it; another user's job is simply "not found"."""
        job = self.row(job_id)
        if not principal.can_see(job.user):
            raise not_found("task", "任务", job_id)
        return job

    def list(self, filters: dict | None, principal: Principal) -> list[Job]:
        """Jobs matching ``filters``; a non-admin sees only their own, whatever ``user`` says."""
        if filters is not None and not isinstance(filters, dict):
            raise ValidationError("The filter must be a JSON object, e.g. {\"status\": \"running\"}.",
                                  "筛选条件必须是 JSON 对象，例如 {\"status\": \"running\"}。")
        filters = dict(filters or {})
        unknown = set(filters) - FILTER_KEYS
        if unknown:
            shown = ", ".join(sorted(str(k)[:32] for k in unknown))
            raise ValidationError(f"Unknown filter(s): {shown}. Use: {', '.join(sorted(FILTER_KEYS))}.",
                                  f"未知筛选条件：{shown}。可用：{', '.join(sorted(FILTER_KEYS))}。")
        try:
            limit = max(1, min(int(filters.pop("limit", 50)), 500))
            offset = max(0, min(int(filters.pop("offset", 0)), 10**9))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValidationError("limit and offset must be integers.", "limit 和 offset 必须是整数。") from exc
        if not principal.admin:
            filters["user"] = principal.user
        query = Job.select().order_by(Job.created_at.desc())
        for key, value in filters.items():
            if value in (None, "", []):
                continue
            values = value if isinstance(value, list) else [value]
            if len(values) > 50 or not all(isinstance(v, str) and len(v) <= 200 for v in values):
                raise ValidationError(f"Filter '{key}' takes a text value or a list of text values.",
                                      f"筛选条件“{key}”应为文本或文本列表。")
            field = getattr(Job, key)
            query = query.where(field.in_(values) if isinstance(value, list) else field == value)
        return list(query.limit(limit).offset(offset))

    def image_of_job(self, ref: str, principal: Principal) -> Path:
        """``<task_id>`` = the job's first image output; ``<task_id>#<n>`` = its n-th output (from 0)."""
        job_id, _, index = ref.partition("#")
        job = self.get(job_id, principal)
        if index:
            if not index.isdigit() or int(index) >= len(job.outputs):
                raise ValidationError(f"Task {job_id} has no output #{index} (it has {len(job.outputs)}).",
                                      f"任务 {job_id} 没有第 {index} 号输出（共 {len(job.outputs)} 个）。")
            outputs = [job.outputs[int(index)]]
        else:
            outputs = job.outputs
        for out in outputs:
            if out.get("kind") == "image" and job.status == "succeeded":
                return self.settings.workspace / out["file"]
        raise ValidationError(f"Task {job_id} has no image output to use.", f"任务 {job_id} 没有可用的图片输出。")

    def image_inputs(self, images: list[dict]):
        from engines.base import ImageInput

        ws = self.settings.workspace
        return [ImageInput(role=i["role"], url=i.get("url"),
                           path=Path(i["staged"]) if i.get("staged") else ws / i["path"] if i.get("path") else None)
                for i in images]

    def primary_output(self, job: Job) -> Path:
        if job.status != "succeeded" or not job.outputs:
            raise Conflict(f"Task {job.id} has no result yet (status: {job.status}).",
                           f"任务 {job.id} 还没有结果（状态：{job.status}）。")
        path = self.settings.workspace / job.outputs[0]["file"]
        if not path.exists():
            raise NotFound(f"The output of task {job.id} was removed ({job.info.get('cleaned', 'missing')}).",
                           f"任务 {job.id} 的输出文件已被清理。")
        return path

    # --- change ---------------------------------------------------------------------
    def cancel(self, job_id: str, principal: Principal) -> Job:
        job = self.get(job_id, principal)
        if job.status in ("cancelled", "failed"):
            return job
        if job.status == "succeeded":
            raise Conflict("This task already finished; nothing to cancel.", "任务已完成，无需取消。")
        if job.status == "queued":
            n = jobstate.cancel_queued(job.id, "cancelled before it started")
            if n and self.queue is not None:
                self.queue.revoke(job.lane, job.huey_id)
            if n:
                return self.row(job.id)
            job = self.row(job.id)
        jobstate.request_cancel(job.id)
        if job.kind == "cloud":
            self._cancel_cloud(job)
        return self.row(job.id)

    def _cancel_cloud(self, job: Job) -> None:
        engine = self.engines.get(job.engine)
        note_en = "Stopped polling; the provider may still finish this task and bill for it."
        note_zh = "已停止查询；服务商可能仍会完成并计费该任务。"
        if job.remote_id and engine is not None and getattr(engine, "can_cancel", False):
            try:
                if engine.cancel_remote(job.remote_id):
                    note_en, note_zh = "Cancelled at the provider.", "已在服务商处取消。"
            except Exception as exc:  # the provider refused: keep the local cancel
                log.warning("remote cancel of %s failed: %s", job.id, type(exc).__name__)
        jobstate.cancelled_now(job.id, note_en, {**job.info, "cancel_note": note_en, "cancel_note_zh": note_zh})

    def retry(self, job_id: str, principal: Principal, *, resend: bool = False) -> Job:
        """Run a failed or cancelled job again, under the same id and seed. It counts against its
        owner's quota again (a failed or never-started job was not counted). ``resend=True`` is
        "Retry anyway": a cloud engine sends a new create even though an earlier one may have been
        accepted (the engine's ``allow_resend``; see engines/cloud/safecreate.py)."""
        job = self.get(job_id, principal)
        if job.status not in ("failed", "cancelled"):
            raise Conflict(f"Only failed or cancelled tasks can be retried (this one is {job.status}).",
                           f"只有失败或已取消的任务可以重试（当前：{job.status}）。")
        with db.atomic("IMMEDIATE"):
            engine = self.engines.get(job.engine)
            if self.admission is not None and job.kind in ("local", "cloud"):
                self.admission(user=job.user, engine=self.engine(job.engine), task=job.task,
                               params=self.engine(job.engine).Params.model_validate(job.params), parent=None)
            if resend and (allow := getattr(engine, "allow_resend", None)) is not None:
                allow(job.id)
            if job.remote_id and (job.status == "cancelled" or resend) and hasattr(engine, "task_ended"):
                engine.task_ended(job.id)  # the journal must not hand that task to the new run (README: Retry)
            n = jobstate.reset_for_retry(job)
        job = self.row(job_id)
        if n:
            self.enqueue(job)
        return job

    def rerun(self, job_id: str, principal: Principal, *, source: str | None = None) -> Job:
        """A new job with the same resolved parameters (seed included) and inputs, owned by and
        billed to the caller (who must be able to see the original)."""
        job = self.get(job_id, principal)
        if job.engine not in self.engines:
            raise Conflict(f"A {job.engine} task is re-run from where it was made (an episode: Render in the "
                           "Projects tab); Retry runs this one again.",
                           f"{job.engine} 任务请在原处重新生成（剧集：在“项目”页点击渲染）；“重试”可再次运行此任务。")
        request = {**job.request, "params": job.params}
        return self.submit(request, principal, source=source or job.source, rerun_of=job.id,
                           images=[dict(i) for i in job.images])

    # --- views ----------------------------------------------------------------------
    def status_dict(self, job: Job) -> dict:
        timings = {}
        if job.started_at:
            timings["queued_s"] = round(job.started_at - job.created_at, 3)
            if job.finished_at:
                timings["run_s"] = round(job.finished_at - job.started_at, 3)
        return {
            "task_id": job.id,
            "status": job.status,
            "progress": round(job.progress, 1),
            "message": job.message,
            "error": job.error,
            "error_zh": job.error_zh,
            "error_code": job.error_code,
            "engine": job.engine,
            "kind": job.kind,
            "task": job.task,
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt,
            "params": job.params,
            "images": [public_image(i) for i in job.images],
            "outputs": job.outputs,
            "remote_status": job.remote_status,
            "info": {k: v for k, v in job.info.items() if not k.startswith("_")},
            "project": job.project,
            "parent": job.parent,
            "rerun_of": job.rerun_of,
            "attempts": job.attempts,
            "timings": timings,
            "created_at": iso(job.created_at),
            "updated_at": iso(job.updated_at),
        }
