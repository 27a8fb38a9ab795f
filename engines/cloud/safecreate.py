"""A create is sent once: a lost answer is looked up, never re-sent blindly.

A create whose answer was lost is ambiguous: the vendor may or may not have made (and billed)
the task. ``engines/cloud/create_failures.py`` classifies every create failure once, as **not
created** (re-sending is safe) or **maybe created** (re-sending may bill a second task), and says
per engine what "maybe created" leads to (``RECOVERY``: dedupe, lookup or none). Here:

``create_steps(journal, job_id, plan) -> task id``   the create loop every adapter uses, as steps
                      (``engines.cloud.steps``): ``steps.run`` on an io worker, ``await
                      steps.arun`` on the cloud event loop (``KeyedCloudEngine.start`` /
                      ``astart``), so the rules exist once. Each attempt is written to the create
                      journal before it is sent and again with its classification, so a crash
                      between send and answer resumes by looking up (or failing clearly), never
                      by re-sending. A plan's ``send`` and ``lookup`` are written as steps too (an
                      ``Io`` per request); a cancel (the studio stopping) leaves the note as a crash
                      would: the next start looks the task up.
``maybe_created(...) -> ProviderError``   the failure a person sees (English + Chinese): the
                      create may have been accepted, the request id to look for in the vendor's
                      console, nothing was sent twice; "Retry anyway" sends a new create.
``allow_resend(journal, job_id)``   the explicit "Retry anyway": the next start() sends a
                      fresh create (new key) even though an earlier one may exist.

Knobs (environment): ``XIANYING_CREATE_SETTLE_S`` (3 s) wait before looking up after an
unanswered create (the vendor may still be writing the task); ``XIANYING_LOOKUP_ATTEMPTS`` (6)
tries of each lookup request; ``XIANYING_CREATE_QUIET_S`` (60 s)
how long after the last send an empty lookup on a later start (Retry, restart) counts as "not
created"; ``XIANYING_LOOKUP_SLACK_S`` (30 s) clock slack around an attempt's send window.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from core.errors import AppError, ProviderError
from engines.cloud.create_failures import (ANSWERED, CREATE_FAILURES, MAYBE_CREATED, NOT_CREATED,  # noqa: F401
                                           RECOVERY, VENDOR_OVERRIDES, classify, retryable)
from engines.cloud.journal import CreateJournal
from engines.cloud.steps import Io, Sleep, Steps

log = logging.getLogger(__name__)

MAYBE_CODE = "uncertain_create"  # the job's error_code when a create may exist

_claim_locks: dict[str, threading.Lock] = {}
_claim_guard = threading.Lock()


def _env(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, "") or default))
    except ValueError:
        return default


def settle_s() -> float:
    return _env("XIANYING_CREATE_SETTLE_S", 3.0)


def quiet_s() -> float:
    return _env("XIANYING_CREATE_QUIET_S", 60.0)


def lookup_slack_s() -> float:
    return _env("XIANYING_LOOKUP_SLACK_S", 30.0)


def lookup_attempts() -> int:
    """A lookup only reads, so it may try harder than a create: ``XIANYING_LOOKUP_ATTEMPTS`` (6)."""
    return max(1, int(_env("XIANYING_LOOKUP_ATTEMPTS", 6)))




def backoff_s(attempt: int, exc: BaseException | None = None) -> float:
    max_wait = _env("XIANYING_RETRY_MAX_WAIT", 8.0)
    initial = min(_env("XIANYING_RETRY_INITIAL", 0.5), max_wait)
    hinted = getattr(exc, "fields", {}).get("retry_after") if exc is not None else None
    if hinted is not None:
        return min(float(hinted), max_wait)
    return min(initial * 2 ** (attempt - 1) + random.uniform(0, initial), max_wait)


# --- the error a person sees ----------------------------------------------------------
def maybe_created(vendor: str, request_ref: str | None, why_en: str = "", why_zh: str = "", *,
                  can_look: bool = True) -> ProviderError:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    ref_en = f" Request id: {request_ref}; failed at {when}." if request_ref else f" Failed at {when}."
    ref_zh = f"请求 ID：{request_ref}；失败时间 {when}。" if request_ref else f"失败时间 {when}。"
    retry_en = "Retry looks for it again, and" if can_look else f"Retry will not send it again ({vendor} cannot " \
        "be asked for it);"
    retry_zh = "“重试”会再次查找，" if can_look else f"“重试”不会重新提交（无法向 {vendor} 查询该任务）；"
    return ProviderError(
        f"{vendor} may have accepted this job: its answer to the create was lost{why_en}. Nothing was sent twice."
        f"{ref_en} Check the {vendor} console for the task; {retry_en} \"Retry anyway\" sends a new create "
        "(a second task may be billed).",
        f"{vendor} 可能已接受该任务：创建请求的响应丢失{why_zh}。未重复提交。{ref_zh}请在 {vendor} 控制台查看该任务；"
        f"{retry_zh}“仍然重试”会重新提交（可能再次计费）。",
        retryable=False, vendor_code=MAYBE_CODE, request_ref=request_ref, create_final=True)


# --- the create loop ------------------------------------------------------------------
@dataclass
class CreatePlan:
    engine_id: str
    vendor: str
    send: Callable[[int], Any]                      # send(generation) -> task id, as steps (engines.cloud.steps)
    request_ref: Callable[[int], str | None]        # the id a person can look for (per generation)
    lookup: Callable[[dict], Any] | None = None  # lookup(note) -> candidates as steps: ids or (id, created_at)
    identifies: bool = False  # a lookup match is this job's task for sure (Ark: its own random seed)

    @property
    def recovery(self) -> str:
        return RECOVERY.get(self.engine_id, "none")


def allow_resend(journal: CreateJournal, job_id: str) -> None:
    journal.save(job_id, resend=True)


def log_attempt(journal: CreateJournal, job_id: str, *, note: dict | None = None, **entry) -> dict:
    """Append ``entry`` to the job's attempt log; ``note``: fields of the note saved in the same write."""
    current = journal.load(job_id)
    attempts = list(current.get("attempts") or [])[-19:]
    attempts.append({"at": round(time.time(), 3), **entry})
    return journal.save_over(current, job_id, **(note or {}), attempts=attempts)


def claim_lock(journal: CreateJournal) -> threading.Lock:
    """One lookup-and-claim at a time per engine, so two jobs never adopt the same task."""
    with _claim_guard:
        return _claim_locks.setdefault(str(journal.root), threading.Lock())


def claimed_ids(journal: CreateJournal, exclude_job: str) -> set[str]:
    ids: set[str] = set()
    if not journal.root.is_dir():
        return ids
    for path in journal.root.glob("*.json"):
        if path.stem != exclude_job:
            note = journal.load(path.stem)
            for key in ("remote_id", "task_id"):
                if note.get(key):
                    ids.add(str(note[key]))
    return ids


def send_windows(note: dict) -> list[tuple[float, float]]:
    """When this job's creates were on the wire, from its attempt log, widened by the lookup slack: a
    task of this job was made inside one of them (a send with no logged end is open until now)."""
    slack, now, out = lookup_slack_s(), time.time(), []
    log_ = list(note.get("attempts") or [])
    for i, entry in enumerate(log_):
        if entry.get("outcome") != "sending":
            continue
        end = next((float(e["at"]) for e in log_[i + 1:] if e.get("at")), now)
        out.append((float(entry.get("at") or 0) - slack, end + slack))
    if not out and note.get("sent_at"):
        out.append((float(note["sent_at"]) - slack, now + slack))
    return out


def _windows(journal: CreateJournal, job_id: str) -> list[tuple[float, float, bool]]:
    """Send windows ``(from, to, in_flight)`` of other jobs whose create is unresolved (sending, or maybe
    created): a task made inside one of them could be theirs."""
    if not journal.root.is_dir():
        return []
    now, slack, out = time.time(), lookup_slack_s(), []
    for path in journal.root.glob("*.json"):
        if path.stem == job_id:
            continue
        other = journal.load(path.stem)
        state = other.get("state")
        start = float(other.get("first_sent_at") or other.get("sent_at") or 0)
        if state == MAYBE_CREATED:
            out.append((start - slack, float(other.get("failed_at") or other.get("updated_at") or 0) + slack, False))
        elif state == "sending" and now - float(other.get("updated_at") or 0) < max(quiet_s(), 120.0):
            out.append((start - slack, now + slack, True))  # in flight (not a note a dead process left long ago)
    return out


def _rows(found) -> list[tuple[str, float | None]]:
    return [r if isinstance(r, tuple) else (r, None) for r in (found or [])]


def _steps_of(value):
    """An adapter's send or lookup: steps (a generator) are run, one request (an ``Io``) is yielded, a
    plain value is taken as is."""
    if isinstance(value, Generator):
        return (yield from value)
    if isinstance(value, Io):
        return (yield value)
    return value


def _adopt(journal: CreateJournal, job_id: str, plan: CreatePlan, rows: list) -> tuple[str | None, list[str], bool]:
    """(adopted id or None, candidates, worth waiting), decided under the claim lock from the rows a
    lookup found (ids, or ``(id, created_at)`` pairs, epoch seconds or None). The rows are read before
    the lock is taken, so tasks another job claimed meanwhile are dropped here: two jobs never adopt
    the same task."""
    with claim_lock(journal):
        note = journal.load(job_id)
        taken = claimed_ids(journal, exclude_job=job_id)
        rows = [(tid, c) for tid, c in _rows(rows) if tid not in taken]
        found = sorted({tid for tid, _ in rows})
        if len(found) != 1:
            return None, found, False
        created = next(c for tid, c in rows if tid == found[0])
        blocking = [w for w in ([] if plan.identifies else _windows(journal, job_id))
                    if created is None or w[0] <= created <= w[1]]
        if not blocking:
            log_attempt(journal, job_id, note={"state": "created", "remote_id": found[0], "adopted": True},
                        generation=note.get("generation"), outcome="adopted", task_id=found[0])
            return found[0], found, False
        return None, found, all(in_flight for _, _, in_flight in blocking)


def _lookup(journal: CreateJournal, job_id: str, plan: CreatePlan) -> Steps:
    """Look up; while the one candidate could also be a task of another job still waiting for its answer,
    wait for that job to resolve (it claims its task, or fails) and look again. -> (adopted, found)"""
    deadline = time.monotonic() + _env("XIANYING_HTTP_TIMEOUT", 60.0) + settle_s() + 1.0
    while True:
        rows = (yield from _steps_of(plan.lookup(journal.load(job_id)))) if plan.lookup else []
        adopted, found, waiting = _adopt(journal, job_id, plan, rows)
        if adopted is not None or not waiting or time.monotonic() > deadline:
            return adopted, found
        yield Sleep(0.05 + random.uniform(0, 0.05))


def _undecided(found: list[str]) -> tuple[str, str]:
    ids = ", ".join(found)
    return (f", and {len(found)} task(s) could be this job's ({ids}) but cannot be told apart from other jobs'",
            f"，且有 {len(found)} 个任务可能属于本作业（{ids}），但无法与其他作业的任务区分")


def create_steps(journal: CreateJournal, job_id: str, plan: CreatePlan) -> Steps:
    """Every rule of a create, as steps (``engines.cloud.steps``): sends, lookups and pauses are yielded."""
    note = journal.load(job_id)
    generation = int(note.get("generation") or 0)
    pending = note.get("state") in ("sending", MAYBE_CREATED)
    if note.get("resend"):  # "Retry anyway": the user accepts a possible second task
        journal.save(job_id, resend=False, state="not_created")
        log_attempt(journal, job_id, generation=generation, outcome="resend_requested")
        pending = False
    elif pending:
        recovered = yield from _resume(journal, job_id, plan, note)
        if recovered is not None:
            return recovered
        note = journal.load(job_id)
        pending = note.get("state") == "sending" and plan.recovery == "dedupe"
    first: dict = {}
    if not pending:
        generation += 1
        first = {"first_sent_at": time.time()}
    attempts = max(1, int(_env("XIANYING_RETRY_ATTEMPTS", 3)))
    if plan.recovery == "dedupe":  # a re-send under the same key is safe: it may try as hard as a lookup
        attempts = max(attempts, lookup_attempts())
    uncertain = pending  # an earlier send under this key may have made the task
    for n in range(1, attempts + 1):
        ref = plan.request_ref(generation)
        sending = {**first, "state": "sending", "generation": generation, "request_ref": ref, "sent_at": time.time()}
        log_attempt(journal, job_id, note=sending, generation=generation, n=n, outcome="sending", request_ref=ref)
        first = {}
        try:
            task_id = yield from _steps_of(plan.send(generation))
        except Exception as exc:  # classified below; anything else is re-raised unchanged
            if not isinstance(exc, (ProviderError, httpx.HTTPError)):
                # a local refusal (bad parameters, missing key) never reached the vendor; a bug might have
                local = isinstance(exc, AppError)
                journal.save(job_id, state=NOT_CREATED if local else MAYBE_CREATED, failed_at=time.time())
                raise
            if getattr(exc, "fields", {}).get("create_final"):  # the adapter already decided
                journal.save(job_id, state=MAYBE_CREATED, failed_at=time.time())
                log_attempt(journal, job_id, generation=generation, n=n, outcome=MAYBE_CREATED, kind="adapter")
                raise
            kind, outcome = classify(plan.engine_id, exc)
            code = getattr(exc, "vendor_code", None) or type(exc).__name__
            log_attempt(journal, job_id, generation=generation, n=n, outcome=outcome, kind=kind, code=code)
            log.info("%s create attempt %d for job %s: %s (%s)", plan.vendor, n, job_id, outcome, kind)
            journal.save(job_id, state=MAYBE_CREATED if uncertain else outcome, failed_at=time.time())
            if outcome == NOT_CREATED:
                if retryable(exc) and n < attempts:
                    yield Sleep(backoff_s(n, exc))
                    continue
                if uncertain:  # this send made nothing, but an earlier one under the same key may have
                    raise maybe_created(plan.vendor, ref) from exc
                raise
            uncertain = True
            # maybe created
            if plan.recovery == "dedupe":
                if n < attempts:
                    yield Sleep(backoff_s(n, exc))
                    continue
                raise maybe_created(plan.vendor, ref) from exc
            if plan.recovery == "lookup":
                adopted = yield from _settled_lookup(journal, job_id, plan, kind, ref, exc)
                if adopted is not None:
                    return adopted
                # the vendor answered and lists nothing: it was not created; send again
                journal.save(job_id, state=NOT_CREATED)
                uncertain = False
                if n < attempts:
                    yield Sleep(backoff_s(n, exc))
                    generation += 1
                    continue
                raise
            raise maybe_created(plan.vendor, ref, can_look=False) from exc
        with claim_lock(journal):  # not while another job's lookup is deciding whose task this is
            log_attempt(journal, job_id, note={"state": "created", "remote_id": task_id}, generation=generation, n=n,
                        outcome="created", task_id=task_id)
        return task_id
    raise AssertionError("unreachable")  # pragma: no cover


def _looked_up(journal: CreateJournal, job_id: str, plan: CreatePlan, ref: str | None, why_en: str,
               why_zh: str) -> Steps:
    """A lookup whose own failure ends the create as "maybe created". -> (adopted, found)"""
    try:
        return (yield from _lookup(journal, job_id, plan))
    except ProviderError as lookup_exc:
        journal.save(job_id, state=MAYBE_CREATED)
        raise maybe_created(plan.vendor, ref, why_en, why_zh) from lookup_exc


def _settled_lookup(journal: CreateJournal, job_id: str, plan: CreatePlan, kind: str, ref: str | None,
                    exc: BaseException) -> Steps:
    """After a maybe-created attempt: adopt the one match, or raise; None only when the vendor answered
    (5xx, unreadable body) and lists nothing, i.e. it did not create the task."""
    if kind not in ANSWERED:
        yield Sleep(settle_s())
    adopted, found = yield from _looked_up(journal, job_id, plan, ref, " and looking it up failed too",
                                           "，且查询任务也失败了")
    if adopted is not None:
        return adopted
    if found:
        journal.save(job_id, state=MAYBE_CREATED)
        raise maybe_created(plan.vendor, ref, *_undecided(found)) from exc
    if kind not in ANSWERED:
        journal.save(job_id, state=MAYBE_CREATED)
        raise maybe_created(plan.vendor, ref, " and the task is not listed yet", "，且暂未查到该任务") from exc
    return None


def _resume(journal: CreateJournal, job_id: str, plan: CreatePlan, note: dict) -> Steps:
    """A start() after a create that may have reached the vendor (crash mid-send, or a Retry)."""
    ref = note.get("request_ref")
    log_attempt(journal, job_id, generation=note.get("generation"), outcome="resume", state=note.get("state"))
    if plan.recovery == "dedupe":
        journal.save(job_id, state="sending")
        return None  # the same key again: the vendor refuses a duplicate and we find the task
    if plan.recovery == "lookup":
        adopted, found = yield from _looked_up(journal, job_id, plan, ref, " and looking it up failed",
                                               "，且查询任务失败")
        if adopted is not None:
            return adopted
        if found:
            journal.save(job_id, state=MAYBE_CREATED)
            raise maybe_created(plan.vendor, ref, *_undecided(found))
        last = float(note.get("sent_at") or 0)
        if time.time() - last >= quiet_s():  # long enough: an unlisted task was never made
            journal.save(job_id, state=NOT_CREATED)
            log_attempt(journal, job_id, generation=note.get("generation"), outcome=NOT_CREATED, kind="lookup_empty")
            return None
        journal.save(job_id, state=MAYBE_CREATED)
        raise maybe_created(plan.vendor, ref, " and the task is not listed yet (try again in a minute)",
                            "，且暂未查到该任务（请一分钟后再试）")
    journal.save(job_id, state=MAYBE_CREATED)
    raise maybe_created(plan.vendor, ref, can_look=False)
