"""Gradio named endpoints for scripts (``gradio_client``): JSON in, JSON out.

    /engines ()              -> [{id, kind, tasks, available, reason, voices, params_schema}]
    /submit (request)        -> {task_id, status}
    /submit_many (requests)  -> [{task_id, status}, ...]   (1-500 requests, all or nothing, in order)
    /status (task_id)        -> {task_id, status, progress, error, engine, params, outputs, ...}
    /cancel (task_id)        -> {task_id, status}
    /retry  (task_id, resend=False) -> {task_id, status}   (resend: "Retry anyway", a new cloud create)
    /rerun  (task_id)        -> {task_id, status}   (a new task, same parameters and seed)
    /result (task_id)        -> the primary output file (the client downloads it)
    /tasks  (filter)         -> [status, ...]
    /usage  (filter)         -> {since, until, rows: [{day, engine, seconds, tokens, count, raw}], totals}

Each is a few lines over the job service; ``AppError`` becomes ``gr.Error`` in the caller's
language (Accept-Language), so clients see a clear message, never a traceback.
"""


import functools
import logging

import gradio as gr
from gradio.data_classes import FileData

from app.access import caller, handler
from core.errors import AppError

from .i18n import lang_of

log = logging.getLogger(__name__)


def guarded(fn):
    """Run ``fn`` and turn AppError into ``gr.Error`` in the request's language."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        request = kwargs.get("request")
        if request is None:
            request = next((a for a in args if isinstance(a, gr.Request)), None)
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except AppError as exc:
            raise gr.Error(exc.text(lang_of(request)), print_exception=False) from None
        except Exception as exc:
            log.exception("handler %s failed", fn.__name__)
            lang = lang_of(request)
            msg = "内部错误，请查看日志。" if lang == "zh" else "Internal error; see the studio log."
            raise gr.Error(f"{msg} ({type(exc).__name__})", print_exception=False) from None

    return wrapper


def one_at_a_time(queue: str) -> dict:
    """An event listener's keywords: its calls wait in ``queue`` and run alone, so a panel redrawn from
    disk by several triggers draws its newest read last (``app/ui/projects_view.py``)."""
    return {"concurrency_id": queue, "concurrency_limit": 1}


def on(access: str, what_en: str = "do this", what_zh: str = "执行此操作"):
    """An event handler with its access decision (see ``app.access.handler``) and readable errors."""

    def deco(fn):
        wrapped = guarded(handler(access, what_en, what_zh)(fn))
        wrapped.__access__ = access
        return wrapped

    return deco


def register(service) -> None:
    """Declare the endpoints inside the current ``gr.Blocks``."""

    def short(job) -> dict:
        return {"task_id": job.id, "status": job.status}

    @on("public")
    def engines(request: gr.Request = None) -> list:
        return service.engines_info()

    @on("user")
    def submit(task: dict, request: gr.Request = None) -> dict:
        return short(service.submit(task, caller(request), source="api"))

    @on("user")
    def submit_many(requests: list, request: gr.Request = None) -> list:
        return [short(job) for job in service.submit_many(requests, caller(request), source="api")]

    @on("user")
    def status(task_id: str, request: gr.Request = None) -> dict:
        return service.status_dict(service.get(task_id, caller(request)))

    @on("user")
    def cancel(task_id: str, request: gr.Request = None) -> dict:
        return short(service.cancel(task_id, caller(request)))

    @on("user")
    def retry(task_id: str, resend: bool = False, request: gr.Request = None) -> dict:
        return short(service.retry(task_id, caller(request), resend=bool(resend)))

    @on("user")
    def rerun(task_id: str, request: gr.Request = None) -> dict:
        return short(service.rerun(task_id, caller(request), source="api"))

    @on("user")
    def result(task_id: str, request: gr.Request = None) -> FileData:
        return FileData(path=str(service.primary_output(service.get(task_id, caller(request)))))

    @on("user")
    def tasks(filter: dict | None = None, request: gr.Request = None) -> list:
        return [service.status_dict(job) for job in service.list(filter, caller(request))]

    @on("user")
    def usage(filter: dict | None = None, request: gr.Request = None) -> dict:
        from app.usage import ledger

        principal = caller(request)
        return ledger(filter or {}, user=None if principal.admin else principal.user)

    for fn in (engines, submit, submit_many, status, cancel, retry, rerun, result, tasks, usage):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
