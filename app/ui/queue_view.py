"""Queue tab: the live job list (read from the job table every second), and actions on one job."""

from __future__ import annotations

import html

import gradio as gr

from app.access import caller

from .api import on
from .i18n import i18n_text, lang_of, word

STATUS_COLOURS = {"queued": "#8a8a8a", "running": "#2f7de1", "succeeded": "#2e9d57",
                  "failed": "#d64545", "cancelled": "#b68a1c"}
FILTERS = {"all": None, "active": ["queued", "running"], "succeeded": ["succeeded"],
           "failed": ["failed", "cancelled"]}


def file_url(job_id: str, rel: str | None) -> str | None:
    return f"/files/{job_id}/{rel.rsplit('/', 1)[-1]}" if rel else None


def job_label(job, lang: str = "en") -> str:
    prompt = (job.prompt or "").replace("\n", " ")
    return f"{job.id[:8]} · {job.engine} · {word(job.status, lang)} · {prompt[:30]}"


def table_html(jobs, lang: str) -> str:
    if not jobs:
        return f"<p class='xy-empty'>{html.escape(i18n_text('no_jobs', lang))}</p>"
    zh = lang == "zh"
    head = ["", "ID", "引擎" if zh else "Engine", "状态" if zh else "Status", "进度" if zh else "Progress",
            "提示词" if zh else "Prompt", "信息" if zh else "Info"]
    rows = []
    for job in jobs:
        thumb = next((o.get("thumbnail") for o in job.outputs if o.get("thumbnail")), None)
        img = (f"<img src='{html.escape(file_url(job.id, thumb))}' alt='' class='xy-thumb'>" if thumb else "")
        sound = next((o.get("file") for o in job.outputs if o.get("kind") == "audio"), None)
        if sound and not img:  # a speech job: play it in place
            img = f"<audio controls preload='none' src='{html.escape(file_url(job.id, sound))}'></audio>"
        colour = STATUS_COLOURS.get(job.status, "#888")
        pct = 100.0 if job.status == "succeeded" else job.progress
        bar = (f"<div class='xy-bar'><div style='width:{pct:.0f}%;background:{colour}'></div></div>"
               f"<small>{pct:.0f}%</small>")
        note = job.error_zh if (zh and job.error_zh) else (job.error or job.message or "")
        indent = "↳ " if job.parent else ""
        rows.append(
            f"<tr data-task='{job.id}' data-status='{job.status}'><td>{img}</td><td><code>{indent}{job.id[:8]}</code></td>"
            f"<td>{html.escape(job.engine)}</td>"
            f"<td><span class='xy-badge' style='background:{colour}'>{word(job.status, lang)}</span></td>"
            f"<td>{bar}</td><td>{html.escape((job.prompt or (job.params or {}).get('text') or '')[:80])}</td>"
            f"<td><small>{html.escape(str(note)[:160])}</small></td></tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table class='xy-jobs'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def build(service, t) -> None:
    with gr.Row():
        show = gr.Radio([(t(f"f_{k}"), k) for k in FILTERS], value="all", label=t("status_filter"), scale=3)
        refresh = gr.Button(t("refresh"), scale=1)
    table = gr.HTML(elem_id="job-table")
    with gr.Row():
        selected = gr.Dropdown(choices=[], label=t("selected_job"), scale=4, elem_id="selected-job",
                               allow_custom_value=True)
        cancel = gr.Button(t("cancel"), variant="stop", scale=1, elem_id="cancel")
        retry = gr.Button(t("retry"), scale=1, elem_id="retry")
        rerun = gr.Button(t("rerun"), scale=1, elem_id="rerun")
    detail = gr.JSON(label=t("details"), elem_id="job-detail")
    timer = gr.Timer(1.0)

    @on("user")
    def refresh_view(filter_name, current, request: gr.Request = None):
        principal = caller(request)
        jobs = service.list({"status": FILTERS.get(filter_name), "limit": 100}, principal)
        choices = [(job_label(j, lang_of(request)), j.id) for j in jobs]
        value = current if current in {c[1] for c in choices} else (choices[0][1] if choices else None)
        det = service.status_dict(service.get(value, principal)) if value else None
        return table_html(jobs, lang_of(request)), gr.update(choices=choices, value=value), det

    outs = [table, selected, detail]
    for trigger in (timer.tick, refresh.click, show.change):
        trigger(refresh_view, [show, selected], outs, api_visibility="private", show_progress="hidden")

    def action(fn):
        @on("user")
        def handler(job_id, request: gr.Request = None):
            if not job_id:
                return gr.update()
            job = fn(job_id, caller(request))
            return gr.update(value=job.id)

        return handler

    cancel.click(action(service.cancel), selected, selected, api_visibility="private")
    retry.click(action(service.retry), selected, selected, api_visibility="private")
    rerun.click(action(lambda i, p: service.rerun(i, p, source="ui")), selected, selected, api_visibility="private")
