"""Gradio named endpoints for scripts (``gradio_client``): JSON in, JSON out.

    /engines ()              -> [{id, kind, tasks, available, reason, params_schema}]
    /submit (request)        -> {task_id, status}
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

from app.api.auth import principal_of
from app.errors import AppError, NotFound

from .i18n import lang_of

log = logging.getLogger(__name__)


def guarded(fn):
    """Run ``fn`` and turn AppError into ``gr.Error`` in the request's language."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        request = kwargs.get("request")
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


def caller(request):
    """Whose jobs a caller may list: its key's user, or None (admin / the person at a loopback studio)."""
    principal = principal_of(request)
    return None if principal is None or principal.admin else principal.user


def register(service) -> None:
    """Declare the endpoints inside the current ``gr.Blocks``."""

    def short(job) -> dict:
        return {"task_id": job.id, "status": job.status}

    def owned(task_id, request):
        job = service.get(task_id)
        principal = principal_of(request)
        if principal is not None and not principal.can_see(job.user):
            raise NotFound(f"No task with id '{task_id}'.", f"找不到任务“{task_id}”。")
        return job

    def submitter(request):
        principal = principal_of(request)
        return None if principal is None or principal.anonymous else principal.user

    @guarded
    def engines(request: gr.Request = None) -> list:
        return service.engines_info()

    @guarded
    def submit(task: dict, request: gr.Request = None) -> dict:
        return short(service.submit(task, source="api", user=submitter(request)))

    @guarded
    def status(task_id: str, request: gr.Request = None) -> dict:
        return service.status_dict(owned(task_id, request))

    @guarded
    def cancel(task_id: str, request: gr.Request = None) -> dict:
        return short(service.cancel(owned(task_id, request).id))

    @guarded
    def retry(task_id: str, resend: bool = False, request: gr.Request = None) -> dict:
        return short(service.retry(owned(task_id, request).id, resend=bool(resend)))

    @guarded
    def rerun(task_id: str, request: gr.Request = None) -> dict:
        return short(service.rerun(owned(task_id, request).id, source="api", user=submitter(request)))

    @guarded
    def result(task_id: str, request: gr.Request = None) -> FileData:
        return FileData(path=str(service.primary_output(owned(task_id, request))))

    @guarded
    def tasks(filter: dict | None = None, request: gr.Request = None) -> list:
        filters = dict(filter or {})
        if (user := caller(request)) is not None:
            filters["user"] = user
        return [service.status_dict(job) for job in service.list(filters)]

    @guarded
    def usage(filter: dict | None = None, request: gr.Request = None) -> dict:
        from app.usage import ledger

        return ledger(filter or {}, user=caller(request))

    for fn in (engines, submit, status, cancel, retry, rerun, result, tasks, usage):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)
