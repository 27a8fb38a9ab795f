"""Every change of a job's status, in one place.

A job moves ``queued → running → succeeded | failed | cancelled`` (and ``running → queued`` when
a run is interrupted, ``failed | cancelled → queued`` on retry). Each function here is one
transition, written as a conditional ``UPDATE`` so that it happens at most once: it names the
states it may start from and, for a run, the fencing token the run claimed the job with. A run
that lost its lease (team mode: another worker took the job over) therefore changes nothing.

    create(**fields)                         the row (JobService.submit is the only caller)
    claim(job_id, owner, lease_s)            queued → running; attempts + 1, fence + 1
    progress(job_id, pct, message)           while running
    requeue(job_id, why, fence=None, ...)    running → queued (interrupted; keeps its place)
    succeed(job_id, fence, fields)           running → succeeded (the caller moves the files)
    fail(job_id, exc, fence=None, status=)   not finished → failed | cancelled
    cancel_queued(job_id, message)           queued → cancelled
    request_cancel(job_id)                   flag a running job; its run stops at its next step
    reset_for_retry(job)                     failed | cancelled → queued
    interrupted(job, max_attempts, ...)      a run that died: re-queued while attempts remain, else
                                             failed "Interrupted" (startup reconcile, lost leases)

Fields beside the status (queue message id, leases, a step's turn token, ``info``) are written
here too, by the functions at the end (``set_huey_id``, ``note_queued``, ``touch_if_unchanged``,
``renew_leases``, ``take_turn``, ``save_info``, ``remote_phase``, ``remote_created``). No other module writes ``Job.status``:
``grep -n "status=" app`` finds the writes here.
"""

from __future__ import annotations

import time
import uuid

from peewee import Case, __exception_wrapper__

from core.errors import AppError

from .db import TERMINAL, Job

FINISHED_OR_QUEUED = (*TERMINAL, "queued")


def create(**fields) -> Job:
    now = time.time()
    fields.setdefault("id", uuid.uuid4().hex)
    fields.setdefault("created_at", now)
    fields.setdefault("updated_at", now)
    fields.setdefault("status", "queued")
    return Job.add(**fields)


def _claimed(owner: str | None, lease_s: float) -> dict:
    """What a claim writes besides the phase and the message."""
    now = time.time()
    return {"status": "running", "attempts": Job.attempts + 1, "started_at": now, "updated_at": now, "progress": 0,
            "fence": Job.fence + 1, "lease_owner": owner, "lease_expires": now + lease_s}


def claim(job_id: str, owner: str | None, lease_s: float, *, creating: bool = False) -> bool:
    """``queued → running`` for ``owner``. ``creating``: a cloud job about to send its create says so in
    the same write (its ``creating`` phase), not in a second one."""
    fields = {"remote_phase": "creating", "message": "sending to provider"} if creating else {"message": "starting"}
    n = Job.update(**_claimed(owner, lease_s), **fields).where(Job.id == job_id, Job.status == "queued").execute()
    return bool(n)


def claim_chains(job_ids: list[str], owner: str | None, lease_s: float) -> int:
    """``claim(..., creating=True)`` for many cloud jobs in one write (the cloud process claims what it
    was handed together: app/cloud_host.py); a job that has a task id already keeps its phase. Each
    job that was queued is claimed; the others are left as they are. -> how many were claimed."""
    if not job_ids:
        return 0
    fresh = Job.remote_id.is_null()
    return (Job.update(**_claimed(owner, lease_s),
                       remote_phase=Case(None, [(fresh, "creating")], Job.remote_phase),
                       message=Case(None, [(fresh, "sending to provider")], "starting"))
            .where(Job.id.in_(list(job_ids)), Job.status == "queued").execute())


def progress(job_id: str, pct: float, message: str) -> None:
    (Job.update(progress=min(pct, 99.9), message=message, updated_at=time.time())
     .where(Job.id == job_id, Job.status == "running").execute())


def requeue(job_id: str, why: str, *, fence: int | None = None, count_attempt: bool = False,
            bump_fence: bool = False, from_status: tuple[str, ...] = ("running",),
            lease_expired_before: float | None = None, info: dict | None = None) -> bool:
    """Back to ``queued`` after an interruption; the attempt is given back unless ``count_attempt``.
    ``bump_fence``: a lost lease (the old run must not publish)."""
    update = {"status": "queued", "progress": 0, "message": why, "updated_at": time.time(),
              "lease_owner": None, "lease_expires": None}
    if not count_attempt:
        update["attempts"] = Job.attempts - 1
    if bump_fence:
        update["fence"] = Job.fence + 1
    if info is not None:
        update["info"] = info
    query = Job.update(**update).where(Job.id == job_id, Job.status.in_(from_status))
    if fence is not None:
        query = query.where(Job.fence == fence)
    if lease_expired_before is not None:
        query = query.where(Job.lease_expires < lease_expired_before)
    return bool(query.execute())


def requeue_running_local(why: str) -> int:
    """Every running local job back to ``queued`` (a workspace moving to team mode: no run survives)."""
    return (Job.update(status="queued", progress=0, lease_owner=None, lease_expires=None, updated_at=time.time(),
                       message=why)
            .where(Job.status == "running", Job.kind == "local").execute())


def succeed(job_id: str, fence: int | None, fields: dict) -> bool:
    """``running → succeeded`` with ``fields`` (outputs, info, ...), only while ``fence`` holds."""
    now = time.time()
    update = {"progress": 100.0, "finished_at": now, "updated_at": now, **fields, "status": "succeeded"}
    query = Job.update(**update).where(Job.id == job_id, Job.status == "running")
    if fence is not None:
        query = query.where(Job.fence == fence)
    return bool(query.execute())


def fail(job_id: str, exc: AppError, *, fence: int | None = None, status: str = "failed",
         bump_fence: bool = False, extra: dict | None = None, lease_expired_before: float | None = None) -> bool:
    """A job that has not finished ends as ``failed`` (with the error) or ``cancelled``."""
    now = time.time()
    update = {"status": status, "error": exc.en if status == "failed" else None,
              "error_zh": exc.zh if status == "failed" else None,
              "error_code": getattr(exc, "vendor_code", None) or exc.code, "finished_at": now,
              "updated_at": now, "message": exc.en, **(extra or {})}
    if bump_fence:
        update["fence"] = Job.fence + 1
    query = Job.update(**update).where(Job.id == job_id, Job.status.not_in(TERMINAL))
    if fence is not None:
        query = query.where(Job.fence == fence)
    if lease_expired_before is not None:
        query = query.where(Job.lease_expires < lease_expired_before)
    return bool(query.execute())


def interrupted(job: Job, max_attempts: int, *, why_en: str, why_zh: str, requeue_message: str,
                lease_expired_before: float | None = None, info: dict | None = None) -> str | None:
    """The one rule for a run that died with its job ``running``: back to the queue (the attempt
    counts) while ``attempts < max_attempts``, else failed ``Interrupted``. In team mode the fence
    moves on, so the lost run can publish nothing. Returns ``"requeued"``, ``"failed"`` or None (the
    job had already moved on)."""
    from core.errors import Interrupted

    lease = {"fence": job.fence, "lease_expired_before": lease_expired_before}
    if job.attempts < max_attempts:
        done = requeue(job.id, requeue_message, count_attempt=True, bump_fence=True, info=info, **lease)
        return "requeued" if done else None
    exc = Interrupted(f"Interrupted: {why_en} ({job.attempts} attempts).", f"已中断：{why_zh}（已尝试 {job.attempts} 次）。")
    done = fail(job.id, exc, bump_fence=True, extra={"lease_owner": None, "lease_expires": None}, **lease)
    return "failed" if done else None


def cancel_queued(job_id: str, message: str) -> bool:
    now = time.time()
    return bool(Job.update(status="cancelled", cancel_requested=True, finished_at=now, updated_at=now,
                           message=message)
                .where(Job.id == job_id, Job.status == "queued").execute())


def cancelled_now(job_id: str, message: str, info: dict | None = None) -> bool:
    """An unfinished job ends ``cancelled`` at once (a cloud job whose polling stops; an episode)."""
    now = time.time()
    update = {"status": "cancelled", "finished_at": now, "updated_at": now, "message": message}
    if info is not None:
        update["info"] = info
    return bool(Job.update(**update).where(Job.id == job_id, Job.status.not_in(TERMINAL)).execute())


def request_cancel(job_id: str) -> None:
    Job.update(cancel_requested=True, updated_at=time.time()).where(Job.id == job_id).execute()


def reset_for_retry(job: Job) -> bool:
    return bool(Job.update(status="queued", progress=0, error=None, error_zh=None, error_code=None,
                           cancel_requested=False, attempts=0, remote_id=None, remote_status=None,
                           remote_phase=None, polls=0, message="retry", started_at=None, finished_at=None,
                           updated_at=time.time(), info={"retries": job.info.get("retries", 0) + 1})
                .where(Job.id == job.id, Job.status.in_(("failed", "cancelled"))).execute())


def _while_running(query):
    """Only while the job runs and no cancel was asked."""
    return query.where(Job.status == "running", Job.cancel_requested == False)  # noqa: E712 (peewee)


# --- fields beside the status --------------------------------------------------------------
# Every other write to a job row also lives here, so one module answers "who changes a job?".
# None of these touches ``status``; each names the rows it may change.

def set_huey_id(job_id: str, huey_id: str | None) -> None:
    """The queue message that carries the job now (JobService.enqueue, team migration)."""
    Job.update(huey_id=huey_id).where(Job.id == job_id).execute()


def set_huey_ids(ids: dict[str, str | None]) -> None:
    """``set_huey_id`` for many jobs (a batch just enqueued): one statement, built once, run for each
    (peewee built the UPDATE anew for every job: 500 of them were a fifth of a batch submit)."""
    if not ids:
        return
    marks = ("\x00huey", "\x00job")  # placeholders: where each value goes among the statement's parameters
    sql, params = Job.update(huey_id=marks[0]).where(Job.id == marks[1]).sql()
    if sorted(params) != sorted(marks):  # (not the plain two-parameter statement: one at a time)
        for job_id, huey_id in ids.items():
            set_huey_id(job_id, huey_id)
        return
    order = [marks.index(p) for p in params]
    rows = [tuple((huey_id, job_id)[i] for i in order) for job_id, huey_id in ids.items()]
    with __exception_wrapper__:  # sqlite3's errors as peewee's, as execute_sql raises them
        Job._meta.database.cursor().executemany(sql, rows)


def note_queued(job_id: str, message: str) -> None:
    """Why a queued job waits (a team worker declined it); written once per reason."""
    (Job.update(message=message).where(Job.id == job_id, Job.status == "queued",
                                       (Job.message != message) | Job.message.is_null()).execute())


def touch_if_unchanged(job_id: str, seen_updated_at: float, now: float) -> bool:
    """Mark a silent running job as looked at, once: False when someone else changed it first."""
    return bool(Job.update(updated_at=now).where(Job.id == job_id, Job.updated_at == seen_updated_at).execute())


def renew_leases(owner: str, held: list[str] | None, expires: float) -> list[str]:
    """Extend the leases of ``owner``'s running jobs (only those in ``held`` when given); their ids."""
    mine = (Job.lease_owner == owner) & (Job.status == "running")
    if held is not None:
        mine &= Job.id.in_(list(held) or [""])
    Job.update(lease_expires=expires).where(mine).execute()
    return [j.id for j in Job.select(Job.id).where(mine)]


def take_turn(job_id: str, expected_polls: int, *, not_cancelled: bool = False, fence: int | None = None) -> bool:
    """A running job's next step (an episode's, a cloud job's poll), once: ``polls`` is the step's token,
    so a stale message changes nothing; with ``not_cancelled`` not after a cancel was asked; with
    ``fence`` only in the run claimed with it (a retried job's new run counts its polls from 0 again)."""
    query = Job.update(polls=Job.polls + 1).where(Job.id == job_id, Job.polls == expected_polls,
                                                  Job.status == "running")
    if not_cancelled:
        query = _while_running(query)
    if fence is not None:
        query = query.where(Job.fence == fence)
    return bool(query.execute())


def save_info(job_id: str, changes: dict, *, base: dict | None = None, **fields) -> dict:
    """Merge ``changes`` into the job's ``info`` (and set ``fields``, never the status); the new info.
    ``base``: the info as the caller has just read it with the row (not read again)."""
    if "status" in fields:
        raise ValueError("save_info does not change a job's status")
    info = {**(Job.fetch(job_id).info if base is None else base), **changes}
    Job.update(info=info, updated_at=time.time(), **fields).where(Job.id == job_id).execute()
    return info


def remote_phase(job_id: str, phase: str, message: str, *, while_running: bool = False) -> bool:
    """A cloud job's step with the vendor (creating, collecting); ``while_running``: only while it runs
    and no cancel was asked (False: nothing was written)."""
    query = Job.update(remote_phase=phase, message=message).where(Job.id == job_id)
    if while_running:
        query = _while_running(query)
    return bool(query.execute())


def remote_created(job_id: str, remote_id: str, *, while_running: bool = False, turn: bool = False,
                   fence: int | None = None) -> bool:
    """The vendor's task id, committed on the row before anything else happens (polls start at 0).
    ``turn``: the writer also takes the first poll's turn in this write (``polls`` 1, as ``take_turn(job_id,
    0)`` would leave it): a cloud chain, which polls next, saves a trip to the database per job. ``fence``:
    only in the run claimed with it."""
    query = (Job.update(remote_id=remote_id, remote_phase="polling", polls=1 if turn else 0,
                        message="submitted to provider", updated_at=time.time()).where(Job.id == job_id))
    if while_running:
        query = _while_running(query)
    if fence is not None:
        query = query.where(Job.fence == fence)
    return bool(query.execute())
