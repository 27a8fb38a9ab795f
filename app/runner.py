"""Runs one step of a job on a queue worker: a local run, or a cloud create / poll / collect.

``JobRunner.execute(job_id, token)`` is the body of the lanes' only Huey task. It claims the
job with a conditional UPDATE (so a duplicate delivery does nothing), works in a staging
folder ``<workspace>/tmp/<job_id>/``, and on success moves that folder whole into
``outputs/<date>/<job_id>/``: a failed, cancelled or killed job leaves no partial files.

A cloud job of a video vendor, with ``queue.async_cloud`` on, is handed at once to a chain on the
cloud event loop (``app/cloud_chain.py``) that runs its create, polls and downloads in order and
writes through this runner's ``created`` / ``polled`` / ``collected``; otherwise each step is a
Huey task on an io worker (``_cloud_create``, ``_cloud_poll``, ``_cloud_collect``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.errors import AppError, Cancelled, ProviderError
from core.media import atomic_write_json
from core.platform import move_dir, remove_tree
from engines.cloud import aio as cloud_aio

from . import jobstate
from .db import TERMINAL, Job, connection, db
from .jobs import JobService, iso
from .queue import RESUMED

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25
MAX_POLL_ERRORS = 8


@dataclass
class Finish:
    """A success about to be published (``JobRunner.finishing``): ``write()`` puts ``record`` in the
    staging folder as job.json (atomically, synced); ``publish`` then moves the folder and marks the row."""

    fence: int
    work: Path
    final: Path
    record: dict
    fields: dict

    def write(self) -> None:
        atomic_write_json(self.work / "job.json", self.record)


class JobRunner:
    def __init__(self, service: JobService):
        self.service = service
        self.settings = service.settings
        self.stopping = threading.Event()  # set at shutdown: running local jobs go back to queued
        # who holds a claimed job, and for how long unless renewed (team mode: app.team renews it)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_s = self.settings.team.lease_s
        self.gate = None  # team mode: gate(job) -> False leaves a job to another worker (app.team.dispatch)
        self.isolation = None  # gpu_pool.isolation "process": app.isolation runs gpu-lane local jobs
        # (job id, fence) of each run this process moves on the cloud loop (app/cloud_chain.py)
        self.chains: set[tuple[str, int]] = set()
        self.host = None  # queue.cloud_process: app.cloud_host runs the chains in a child process
        self.on_chain_end = None  # in that child: tells the studio a chain ended

    # --- entry point ----------------------------------------------------------------
    def execute(self, job_id: str, token: int | None = None) -> None:
        with connection():
            job = Job.find(job_id)
            if job is None or job.status in TERMINAL:
                return
            if self.gate is not None and not self.gate(job):
                return
            if job.kind in ("episode", "stitch"):  # an episode's parent and stitch steps: app/episodes.py
                from .episodes import execute

                execute(self, job, token)
                return
            engine = self.service.engines.get(job.engine)
            if engine is None:
                self.fail(job, AppError(f"Engine '{job.engine}' is no longer installed.",
                                         f"引擎“{job.engine}”已不存在。"))
                return
            if job.kind == "local" and self.isolation is not None and job.lane == "gpu":
                self.isolation.run(job.id, token)  # in a worker process that a cancel can end
            elif job.kind == "local":
                self._run_local(job, engine)
            else:
                self._cloud_step(job, engine, token)

    # --- shared pieces --------------------------------------------------------------
    def claim(self, job: Job, *, creating: bool = False) -> bool:
        """queued → running for this runner (app/jobstate.py owns the transition)."""
        return jobstate.claim(job.id, self.owner, self.lease_s, creating=creating)

    def claim_chains(self, job_ids: list[str]) -> int:
        """The queued ones of these cloud jobs → running for this runner, in one write (their chains'
        claims, made before their steps run: each step then finds its job running)."""
        with connection():
            return jobstate.claim_chains(job_ids, self.owner, self.lease_s)

    def workdir(self, job_id: str) -> Path:
        return self.settings.staging_dir / job_id

    def run_dir(self, job_id: str, fence: int) -> Path:
        """A cloud run's downloads, in a folder of this run's own under the job's: a run cancelled and
        retried while its download was on the wire writes there, never into the folder the new run
        publishes (``collecting``)."""
        return self.workdir(job_id) / f"run-{fence}"

    def request_for(self, job: Job):
        from engines.base import EngineRequest

        engine = self.service.engines[job.engine]
        return EngineRequest(job_id=job.id, prompt=job.prompt, negative_prompt=job.negative_prompt,
                             params=engine.Params.model_validate(job.params), workdir=self.workdir(job.id),
                             images=self.service.image_inputs(job.images), attempt=job.attempts)

    def progress_fn(self, job_id: str):
        last = [0.0]

        def progress(step: int, total: int, preview=None) -> None:
            now = time.monotonic()
            if step < total and now - last[0] < PROGRESS_INTERVAL_S:
                return
            last[0] = now
            jobstate.progress(job_id, 100.0 * step / total if total else 0.0, f"step {step}/{total}")

        return progress

    def cancelled_fn(self, job_id: str):
        def cancelled() -> bool:
            if self.stopping.is_set():
                return True
            row = Job.select(Job.cancel_requested).where(Job.id == job_id).first()
            return row is None or row.cancel_requested

        return cancelled

    def _finish(self, job: Job, outputs, info: dict | None = None, work: Path | None = None) -> None:
        """Write job.json, move the staging folder (``work``, or the job's) into outputs/, mark succeeded."""
        done = self.finishing(Job.fetch(job.id), outputs, info, fence=job.fence, work=work)
        done.write()
        self.publish(job, done.fence, done.work, done.final, done.fields)

    def finishing(self, job: Job, outputs, info: dict | None = None, *, fence: int | None = None,
                  work: Path | None = None) -> Finish:
        """What a success publishes, from ``job`` (the row as it is now) and written nowhere yet: the output
        records, ``job.json``'s content and the row's fields (a cloud chain writes job.json on a file
        thread, ``app/cloud_chain.py``). ``fence``: the fencing token this run claimed the job with
        (by default the row's). ``work``: the folder the outputs are in (by default the job's)."""
        fence = job.fence if fence is None else fence
        work = self.workdir(job.id) if work is None else work
        now = time.time()
        final = self.settings.outputs_dir / time.strftime("%Y-%m-%d", time.localtime(job.created_at)) / job.id
        ws = self.settings.workspace

        def rel(p: Path | None) -> str | None:
            return str((final / Path(p).relative_to(work)).relative_to(ws)) if p else None

        records = [{"file": rel(o.path), "kind": o.kind, "thumbnail": rel(o.thumbnail), "width": o.width,
                    "height": o.height, "frames": o.frames, "fps": o.fps, "meta": o.meta,
                    **({"duration": round(o.duration, 3)} if o.duration is not None else {}),
                    **({"timings": o.timings} if o.timings is not None else {}),
                    **({"has_audio": o.has_audio} if o.has_audio is not None else {})} for o in outputs]
        merged_info = {**job.info, **(info or {})}
        record = {
            "task_id": job.id, "engine": job.engine, "task": job.task, "prompt": job.prompt,
            "negative_prompt": job.negative_prompt, "params": job.params, "images": job.images,
            "project": job.project, "parent": job.parent, "outputs": records,
            "info": {k: v for k, v in merged_info.items() if not k.startswith("_")},
            "created_at": iso(job.created_at), "started_at": iso(job.started_at), "finished_at": iso(now),
            "run_s": round(now - (job.started_at or now), 3)}
        return Finish(fence, work, final, record, {
            "status": "succeeded", "progress": 100.0, "outputs": records, "output_dir": str(final.relative_to(ws)),
            "info": merged_info, "finished_at": now, "updated_at": now, "message": "done"})

    def publish(self, job: Job, fence: int, work: Path, final: Path, fields: dict) -> bool:
        """Mark the row succeeded and move ``work`` whole to ``final``, in one transaction and only
        while this run still holds the job (its fencing token): a run that lost its lease (team
        mode) changes nothing and its files are dropped. Team workers override it (uploads)."""
        with db.atomic():
            if not jobstate.succeed(job.id, fence, fields):
                log.warning("job %s: this run no longer holds the job (fence %s); result dropped", job.id, fence)
                return False
            final.parent.mkdir(parents=True, exist_ok=True)
            remove_tree(final)
            move_dir(work, final)
        return True

    def fail(self, job: Job, exc: AppError, status: str = "failed") -> None:
        """Not finished → failed (or cancelled), only while this run's fence holds. The job's staging folder
        goes too, unless a newer run of the job (a Retry, claimed since) has it now."""
        jobstate.fail(job.id, exc, fence=job.fence, status=status)
        self.drop_staging(job)

    def drop_staging(self, job: Job | None, work: Path | None = None) -> None:
        """``work`` (a run's own folder, ``run_dir``), and the job's folder once empty; without ``work``,
        the job's whole folder while this run (``job.fence``) is still the job's newest."""
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                work.parent.rmdir()
        elif (row := Job.find(job.id)) is None or row.fence == job.fence:
            shutil.rmtree(self.workdir(job.id), ignore_errors=True)

    # --- local ----------------------------------------------------------------------
    def _run_local(self, job: Job, engine) -> None:
        if not self.claim(job):
            return
        job = Job.fetch(job.id)
        work = self.workdir(job.id)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            request = self.request_for(job)
            outputs = engine.run(request, self.progress_fn(job.id), self.cancelled_fn(job.id))
            self._finish(job, outputs)
        except Cancelled:
            if self.stopping.is_set() and not Job.fetch(job.id).cancel_requested:
                self.requeue(job, "the studio stopped; it will run again at the next start")
            else:
                self.fail(job, Cancelled(), status="cancelled")
        except AppError as exc:
            self.fail(job, exc)
        except Exception as exc:  # an engine bug or a library error: keep the message, not a traceback
            log.exception("job %s failed", job.id)
            self.fail(job, AppError(f"{job.engine} failed: {type(exc).__name__}: {exc}",
                                     f"{job.engine} 运行失败：{type(exc).__name__}: {exc}"))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def requeue(self, job: Job, why: str) -> None:
        """An interrupted run (the studio is stopping): back to queued, the attempt given back."""
        jobstate.requeue(job.id, why, fence=job.fence)
        shutil.rmtree(self.workdir(job.id), ignore_errors=True)

    # --- cloud ----------------------------------------------------------------------
    def _cloud_step(self, job: Job, engine, token: int | None) -> None:
        chained = self.chained(engine)
        if self.host is not None and chained and self.host.hand(job.id, token):
            return  # the cloud process claims it and runs its chain (app/cloud_host.py)
        if job.status == "queued":  # a chain's claim also says "creating" (one write, not two)
            if not self.claim(job, creating=chained and not job.remote_id):
                return
            job = Job.fetch(job.id)
        if job.cancel_requested:
            return
        if (job.id, job.fence) in self.chains:  # this run moves on the cloud loop already (a re-sent step: nothing
            # to do); a retried job's new run has a new fence and a chain of its own, and the old one stops
            return
        if token is not None:  # a poll (or a resumed create): only the newest scheduled one may run
            if not jobstate.take_turn(job.id, token):
                return
            job = Job.fetch(job.id)
        if self.chained(engine):
            # create, polls and downloads as one chain on the cloud loop: this io worker is free at once
            from .cloud_chain import CloudChain

            CloudChain.begin(self, job, engine)
            return
        if not job.remote_id:
            self._cloud_create(job, engine)
            return
        self._cloud_poll(job, engine)

    def hand_new(self, jobs: list[Job]) -> list[Job]:
        """New cloud jobs straight to the cloud process (``queue.cloud_process``), as if an io worker had
        taken each one off the queue and handed it over: the child claims them and runs their chains. The
        trip through the queue (a message written and taken, an io worker's row read, a pipe write, for
        each job) took a third of a second for a 500-job batch while the UI waited for the same GIL. The
        row stays the truth: a child that dies has its jobs handed on again (``resume``), and a studio
        that dies finds them queued, with no message, at its next start (``reconcile``). Returns the
        jobs left for the queue: all of them unless the cloud process is running."""
        if self.host is None:
            return jobs
        mine = [job.id for job in jobs if job.kind == "cloud" and self.chained(self.service.engines.get(job.engine))]
        if not mine:
            return jobs
        taken = set(mine) - set(self.host.hand_new(mine))
        return [job for job in jobs if job.id not in taken]

    def chained(self, engine) -> bool:
        """``queue.async_cloud`` and an engine that can run its whole job on the cloud loop."""
        return cloud_aio.enabled(self.settings) and bool(getattr(engine, "async_chain", False))

    def _cloud_create(self, job: Job, engine) -> None:
        self.creating(job)
        try:
            remote_id = engine.start(self.request_for(job))
        except Exception as exc:
            self.create_failed(job, exc)
            return
        self.created(job.id, remote_id)
        self.schedule_poll(job.id, engine, 0)

    def creating(self, job: Job) -> None:
        jobstate.remote_phase(job.id, "creating", "sending to provider")

    def create_failed(self, job: Job, exc: Exception) -> None:
        if not isinstance(exc, AppError):
            log.error("create of job %s failed", job.id, exc_info=exc)
            exc = AppError(f"{job.engine}: {type(exc).__name__}: {exc}")
        self.fail(job, exc)

    def created(self, job_id: str, remote_id: str, *, while_running: bool = False, turn: bool = False,
                fence: int | None = None) -> bool:
        """The vendor's task id, committed on the row (before anything else happens). ``while_running``:
        only while the job runs and no cancel was asked (False: it was not written). ``turn``: the first
        poll's turn is taken in the same write (``jobstate.remote_created``); ``fence``: only in that run."""
        return jobstate.remote_created(job_id, remote_id, while_running=while_running, turn=turn, fence=fence)

    def schedule_poll(self, job_id: str, engine, polls: int) -> None:
        self.service.enqueue(Job.fetch(job_id), delay=self.poll_delay(engine, polls), token=polls)

    def poll_delay(self, engine, polls: int) -> float:
        return min(engine.poll_delay(polls), self.settings.queue.poll_max_interval_s)

    def _cloud_poll(self, job: Job, engine) -> None:
        request = self.request_for(job)
        try:
            state, exc = engine.poll(job.remote_id, request), None
        except AppError as err:
            state, exc = None, err
        following = self.polled(job, engine, state, exc)
        if following == "poll":
            self.schedule_poll(job.id, engine, job.polls)
        elif following == "collect":
            self._cloud_collect(job, engine, state, request)

    def polled(self, job: Job, engine, state, exc, *, fresh: bool = False) -> str | None:
        """Record a poll's answer; what comes next: ``"poll"`` (ask again), ``"collect"`` (download the
        results) or None (the job ended here: failed or cancelled). ``fresh``: ``job`` was read in this
        same step (a chain reads it after the answer came), so its info is not read again."""
        if isinstance(exc, ProviderError):
            errors = job.info.get("_poll_errors", 0) + 1
            if exc.retryable and errors < MAX_POLL_ERRORS:
                jobstate.save_info(job.id, {"_poll_errors": errors}, message=f"provider busy: {exc.en}")
                return "poll"
            self.fail(job, exc)
            return None
        if exc is not None:
            self.fail(job, exc)
            return None
        fields = {"remote_status": state.raw_status, "message": f"provider: {state.raw_status}"}
        if state.progress is not None:
            fields["progress"] = min(float(state.progress), 99.0)
        job.info = jobstate.save_info(job.id, {**state.info, "_poll_errors": 0}, base=job.info if fresh else None,
                                      **fields)  # (``job`` is left as written: a chain builds job.json from it)
        if state.status in ("queued", "running"):
            return "poll"
        if state.status == "succeeded":
            return "collect"
        if state.status == "cancelled":
            self.fail(job, Cancelled("Cancelled at the provider.", "已在服务商处取消。"), status="cancelled")
        else:
            self.fail(job, state.error or ProviderError(f"The provider reported {state.raw_status}."))
        return None

    def _cloud_collect(self, job: Job, engine, state, request) -> None:
        request.workdir = self.collecting(job.id, job.fence)  # this run's own (a Retry's run has another)
        if request.workdir is None:
            return
        try:
            outputs, exc = engine.collect(state, request), None
        except Exception as err:
            outputs, exc = None, err
        self.collected(job, state, outputs, exc, work=request.workdir)

    def collecting(self, job_id: str, fence: int) -> Path | None:
        """The downloads of the run claimed with ``fence`` start, while the job runs and no cancel was asked:
        its folder (``run_dir``, made fresh), or None."""
        if not jobstate.remote_phase(job_id, "collecting", "downloading", while_running=True):
            return None
        work = self.run_dir(job_id, fence)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return work

    def collected(self, job: Job, state, outputs, exc: BaseException | None, done: Finish | None = None,
                  work: Path | None = None) -> None:
        """The downloads (in ``work``, the run's folder) are done (``outputs``) or failed (``exc``): publish,
        or fail the job. ``done``: ``finishing``'s answer with job.json already written (a cloud chain)."""
        work = done.work if done is not None else work
        try:
            if exc is None and done is not None:
                self.publish(job, done.fence, done.work, done.final, done.fields)
            elif exc is None:
                self._finish(job, outputs, state.info, work)
            elif isinstance(exc, AppError):
                self.fail(job, exc)
            else:
                log.error("download for job %s failed", job.id, exc_info=exc)
                self.fail(job, AppError(f"Download failed: {type(exc).__name__}: {exc}", f"下载失败：{exc}"))
        finally:
            self.drop_staging(job, work)

    def resume(self, job_ids) -> None:
        """The process that ran these jobs' cloud steps died: put each one back on its way through the
        queue, as a restart's reconcile does (a create resumes from its journal, a poll from its task id)."""
        with connection():
            for job in Job.select().where(Job.id.in_(list(job_ids))):
                if job.status == "queued":
                    self.service.enqueue(job, priority=RESUMED)
                elif job.status == "running" and not job.cancel_requested:
                    self.service.enqueue(job, token=job.polls)

    # --- startup --------------------------------------------------------------------
    def reconcile(self) -> dict:
        """After a start (or a crash): put every unfinished job back on its way."""
        counts = {"requeued": 0, "failed": 0, "resumed": 0, "enqueued": 0}
        queue = self.service.queue
        pending = {lane: queue.pending_job_ids(lane) for lane in ("gpu", "io")} if queue else {}
        with connection():
            for job in Job.select().where(Job.status == "running").order_by(Job.created_at):
                if self.settings.database_url and (job.lease_expires or 0) > time.time():
                    continue  # team mode: a live worker holds it; app.team's monitor acts if it goes silent
                if job.kind in ("cloud", "episode"):  # an episode parent resumes like a poll, never re-runs
                    counts["resumed"] += 1
                    if job.remote_id:
                        self.service.enqueue(job, token=job.polls)
                    else:  # crashed mid-create: the engine re-sends with the same idempotency key
                        self.service.enqueue(job, token=job.polls)
                else:
                    outcome = jobstate.interrupted(
                        job, self.settings.queue.max_attempts, why_en="the studio stopped while this job ran",
                        why_zh="任务运行时工作室被关闭", requeue_message="re-queued after the studio was interrupted")
                    if outcome == "requeued":
                        self.service.enqueue(job, priority=RESUMED)  # before the jobs queued behind it
                    if outcome:
                        counts[outcome] += 1
            for job in Job.select().where(Job.status == "queued").order_by(Job.created_at):
                if job.id not in pending.get(job.lane, set()):
                    # its task was taken off the queue (a stop put it back before or during its run,
                    # see _requeue): it keeps its place before the jobs still waiting there
                    self.service.enqueue(job, priority=RESUMED)
                    counts["enqueued"] += 1
        staging = self.settings.staging_dir
        if staging.exists():
            for child in staging.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        return counts
