"""A cloud job's create, polls and downloads as one ordered chain on the cloud event loop.

With ``queue.async_cloud`` on, an io worker claims a cloud job and hands it here at once
(``CloudChain.begin``): the chain awaits the vendor on the loop (``engines/cloud/aio.py``), so a
vendor slow to answer holds a coroutine, not a thread. Its steps keep the job's order:

    astart (create, journal first: engines/cloud/safecreate.py)  → commit the task id
    → sleep, apoll, record …  → acollect (downloads, then job.json in the same file trip) → publish

Every database write is the runner's own (``created``, ``polled``, ``collected``: the job-state
rules of ``app/jobstate.py``), made on a completion thread, never on the loop.

Only one chain moves a job: a step re-sent to this process while its chain runs does nothing
(``runner.chains``), and before each poll the chain takes the job's poll token (``polls``), as a
scheduled poll task does, so a chain superseded elsewhere (a restart's reconcile, another
process) stops there. The first poll's turn is taken in the write that commits the task id (one
trip to the database fewer per job, in the burst of create answers); a cancel asked during the
first poll's wait then costs one more status query, whose answer is not written. A poll's answer
and the results are written only while the job still has the fence it was claimed with: a chain
whose run was superseded (cancelled, retried and claimed again) does not write them. It also stops
when the job is cancelled (a create answered after a cancel is cancelled at the vendor where it
can be) and when the studio stops: the loop's shutdown cancels
it mid-request, nothing more is written, and the next start resumes the job from its row (a
create from its journal, a poll from its task id) as after a crash.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from peewee import InterfaceError, OperationalError

from core.errors import AppError
from engines.cloud import aio

from . import jobstate
from .db import Job, db

log = logging.getLogger(__name__)


class CloudChain:
    def __init__(self, runner, job: Job, engine, request):
        self.runner, self.engine, self.request = runner, engine, request
        self.job_id, self.token, self.fence = job.id, job.polls, job.fence
        self.remote_id = job.remote_id
        self.row: Job | None = None  # the row as the poll that found the task done left it (job.json's source)
        self.folder: Path | None = None  # this run's own staging folder, once its downloads start

    @classmethod
    def begin(cls, runner, job: Job, engine) -> None:
        """On the io worker that claimed the job: build the request, then leave the rest to the loop."""
        try:
            request = runner.request_for(job)
        except Exception as exc:
            runner.create_failed(job, exc)
            return
        if not job.remote_id and job.remote_phase != "creating":  # (a claim for a chain already wrote it)
            runner.creating(job)
        chain = cls(runner, job, engine, request)
        runner.chains.add((job.id, job.fence))
        try:
            aio.submit(chain.run()).add_done_callback(chain._ended)
        except BaseException:
            runner.chains.discard((job.id, job.fence))
            raise

    def _ended(self, future) -> None:
        self.runner.chains.discard((self.job_id, self.fence))
        if self.runner.on_chain_end is not None:  # the cloud process tells the studio (app/cloud_host.py)
            self.runner.on_chain_end(self.job_id)
        if not future.cancelled() and future.exception() is not None:
            log.error("cloud chain of job %s broke", self.job_id, exc_info=future.exception())

    # --- on the loop ----------------------------------------------------------------
    async def run(self) -> None:
        turn = False  # the next poll's turn is this chain's already (taken with the task id)
        if not self.remote_id:
            try:
                remote_id = await self.engine.astart(self.request)
            except Exception as exc:  # (a CancelledError is not one: the studio is stopping)
                await self._db(self._create_failed, exc)
                return
            if not await self._db(self._created, remote_id):
                return
            self.remote_id, turn = remote_id, True
        polls = 0
        while True:
            await asyncio.sleep(self.runner.poll_delay(self.engine, polls))
            if turn:
                turn = False
                if self.runner.stopping.is_set():
                    return
            elif not await self._db(self._take_turn):
                return
            try:
                state, exc = await self.engine.apoll(self.remote_id, self.request), None
            except Exception as err:
                state, exc = None, err
            following = await self._db(self._polled, state, exc)  # "collect": its collecting phase is written
            if following == "collect":
                break
            if following != "poll":
                return
            polls += 1
        try:  # job.json is written on the file thread that made the last output, in the same trip
            (outputs, done), exc = await self.engine.acollect(state, self.request, self._job_json(state)), None
        except Exception as err:
            outputs, done, exc = None, None, err
        if isinstance(done, AppError):  # a full disk: the job fails with that, its staging folder removed
            done, exc = None, done
        await self._db(self._collected, state, outputs, exc, done)

    async def _db(self, fn, *args):
        return await aio.blocking(self._in_db, fn, *args)

    @staticmethod
    def _in_db(fn, *args):
        """On a completion thread, which keeps its connection between steps: opening one (and setting its
        pragmas) cost a fifth of the chains' database time. A failed query closes it; the next step
        opens a fresh one."""
        if db.is_closed():
            db.connect()
        try:
            return fn(*args)
        except (OperationalError, InterfaceError):
            db.close()
            raise

    # --- on a completion thread -----------------------------------------------------
    def _job(self) -> Job | None:
        """The row while this chain may still move it (running, not cancelled, the studio not stopping)."""
        job = Job.find(self.job_id)
        if (job is None or job.status != "running" or job.cancel_requested or job.fence != self.fence
                or self.runner.stopping.is_set()):
            return None
        return job

    def _create_failed(self, exc: Exception) -> None:
        job = Job.find(self.job_id)
        if job is not None and not self.runner.stopping.is_set():
            self.runner.create_failed(job, exc)

    def _created(self, remote_id: str) -> bool:
        if not self.runner.created(self.job_id, remote_id, while_running=True, turn=True, fence=self.fence):
            job = Job.find(self.job_id)  # cancelled (or gone) while the create was on the wire
            if job is not None and job.fence == self.fence:
                self.runner.created(job.id, remote_id)  # kept: it names the task the vendor made
                self._cancel_remote(job, remote_id)
            elif job is not None:  # cancelled and retried meanwhile: the new run's create resumed from the same
                # journal note and may have looked this very task up and adopted it, so it is left alone
                log.warning("job %s: task %s was answered to a run cancelled and retried meanwhile; left as it is",
                            job.id, remote_id)
            return False
        self.token = 1  # created() restarts the poll count, with the first turn taken
        return not self.runner.stopping.is_set()

    def _cancel_remote(self, job: Job, remote_id: str) -> None:
        """Cancelled while its create was on the wire: the service could not cancel a task it did not know."""
        if not getattr(self.engine, "can_cancel", False):
            return
        try:
            if self.engine.cancel_remote(remote_id):
                jobstate.save_info(job.id, {"cancel_note": "Cancelled at the provider.",
                                            "cancel_note_zh": "已在服务商处取消。"})
        except Exception as exc:  # the provider refused: the local cancel stands
            log.warning("remote cancel of %s failed: %s", job.id, type(exc).__name__)

    def _take_turn(self) -> bool:
        """This chain's next poll, as a scheduled poll task would take it: only with the newest token."""
        if (jobstate.take_turn(self.job_id, self.token, not_cancelled=True, fence=self.fence)
                and not self.runner.stopping.is_set()):
            self.token += 1
            return True
        return False

    def _polled(self, state, exc) -> str | None:
        job = self._job()
        if job is None:
            return None
        if exc is not None and not isinstance(exc, AppError):
            log.error("poll of job %s failed", job.id, exc_info=exc)
            exc = AppError(f"{job.engine}: {type(exc).__name__}: {exc}")
        following = self.runner.polled(job, self.engine, state, exc, fresh=True)
        if following == "collect":
            if not self._collecting():
                return None
            self.row = job  # (its info as polled() wrote it)
        return following

    def _collecting(self) -> bool:
        """In the same completion call as the poll that found the task done (one trip off the loop fewer).
        The downloads go to this run's own folder (``runner.run_dir``)."""
        if self.runner.stopping.is_set():
            return False
        self.folder = self.runner.collecting(self.job_id, self.fence)
        if self.folder is not None:
            self.request.workdir = self.folder
        return self.folder is not None

    def _collected(self, state, outputs, exc, done=None) -> None:
        job = Job.find(self.job_id)
        if job is None or job.fence != self.fence:  # cancelled and retried (or deleted) meanwhile: what this
            if self.folder is not None:  # run downloaded goes; the new run's folder is another one
                self.runner.drop_staging(job, self.folder)
            return
        if self.runner.stopping.is_set() and exc is not None:  # cut by the stop: resumes at the next start
            return
        self.runner.collected(job, state, outputs, exc, done)

    # --- on a file thread ----------------------------------------------------------
    def _job_json(self, state):
        """``acollect``'s ``after``: what the success will publish (``JobRunner.finishing``, from the row the
        last poll left), with job.json written and synced, or the error that fails the job. On the file
        thread that made the results: no trip to the completion thread, and no fsync there."""
        def after(outputs):
            done = self.runner.finishing(self.row, outputs, state.info, fence=self.fence, work=self.folder)
            try:
                done.write()
            except OSError as err:
                return AppError(f"Could not save the result: {err.strerror or err}.",
                                f"无法保存结果：{err.strerror or err}。")
            return done
        return after
