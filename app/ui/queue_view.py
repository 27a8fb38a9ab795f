"""Queue tab: the live job list and actions on each job.

Each row has a thumbnail (or, for a running local video job, its live preview), a progress bar,
an ETA and cancel / retry / re-run buttons on the row itself. A 1 s timer reads the job table,
but the page is only sent a new table when something it shows changed (a signature of the
listed rows), so an idle queue costs a few bytes per tick. The selected job shows as a card,
with the raw JSON behind a "details" toggle."""

from __future__ import annotations

import base64
import html
import re
import time

import gradio as gr

from app.access import caller

from .api import on
from .i18n import i18n_text, lang_of, word
from .job_card import card_markdown

STATUS_COLOURS = {"queued": "#8a8a8a", "running": "#2f7de1", "succeeded": "#2e9d57",
                  "failed": "#d64545", "cancelled": "#b68a1c"}
FILTERS = {"all": None, "active": ["queued", "running"], "succeeded": ["succeeded"],
           "failed": ["failed", "cancelled"]}
LIMIT = 100
PREVIEW = "preview.png"  # written by local engines beside the running job (engines/local/preview.py)
HEAD = {"en": ["", "ID", "Engine", "Status", "Progress", "Time left", "Prompt", "Info", ""],
        "zh": ["", "ID", "引擎", "状态", "进度", "剩余时间", "提示词", "信息", ""]}
ACTIONS = {"cancel": ("Cancel", "取消"), "retry": ("Retry", "重试"), "rerun": ("Re-run", "再次生成")}
# Row buttons write "<action>:<task id>|<ms>" into a hidden box; the box's own change runs the action,
# with the value that changed it (a separate button pressed later could reach the server before the
# box's new value did). The time makes two clicks of the same action in a row still a change.
ROW_JS = """() => {
  if (window.__xyRows) return; window.__xyRows = true;
  document.addEventListener('click', ev => {
    const b = ev.target.closest('#job-table button[data-act]'); if (!b) return;
    const box = document.querySelector('#row-action textarea, #row-action input');
    box.value = b.dataset.act + ':' + b.dataset.task + '|' + Date.now();
    box.dispatchEvent(new Event('input', {bubbles: true}));
  });
}"""


def file_url(job_id: str, rel: str | None) -> str | None:
    return f"/files/{job_id}/{rel.rsplit('/', 1)[-1]}" if rel else None


def job_label(job, lang: str = "en") -> str:
    prompt = (job.prompt or "").replace("\n", " ")
    return f"{job.id[:8]} · {job.engine} · {word(job.status, lang)} · {prompt[:30]}"


def preview_of(service, job):
    """The running local job's latest preview file, or None."""
    if job.status != "running" or job.kind != "local":
        return None
    path = service.settings.staging_dir / job.id / PREVIEW
    return path if path.is_file() else None


def eta_text(job, zh: bool, now: float) -> str:
    if job.status != "running" or not job.started_at or job.progress < 1:
        return "—"
    left = (now - job.started_at) * (100 - job.progress) / job.progress
    if left < 90:
        return f"约 {left:.0f} 秒" if zh else f"~{left:.0f} s"
    return f"约 {left / 60:.0f} 分钟" if zh else f"~{left / 60:.0f} min"


def message_text(message: str | None, zh: bool) -> str:
    """The runner's progress words ("step 3/50", "done") in the page's language; vendors' own text as is."""
    if not message:
        return ""
    if message == "done":
        return "完成" if zh else "done"
    step = re.fullmatch(r"step (\d+)/(\d+)", message)
    if step and zh:
        return f"第 {step[1]}/{step[2]} 步"
    return message


def _buttons(job, zh: bool) -> str:
    acts = ["cancel"] if job.status in ("queued", "running") else \
        (["retry", "rerun"] if job.status in ("failed", "cancelled") else ["rerun"])
    return "".join(f"<button class='xy-act' data-act='{a}' data-task='{job.id}'>{ACTIONS[a][1 if zh else 0]}</button>"
                   for a in acts)


def table_html(jobs, lang: str, previews: dict | None = None, now: float | None = None) -> str:
    if not jobs:
        return f"<p class='xy-empty'>{html.escape(i18n_text('no_jobs', lang))}</p>"
    zh, now, previews = lang == "zh", now or time.time(), previews or {}
    rows = []
    for job in jobs:
        thumb = next((o.get("thumbnail") for o in job.outputs if o.get("thumbnail")), None)
        img = (f"<img src='{html.escape(file_url(job.id, thumb))}' alt='' class='xy-thumb'>" if thumb else "")
        if job.id in previews:  # a small PNG inline: the running job's files are not published yet
            img = f"<img src='data:image/png;base64,{previews[job.id]}' alt='' class='xy-thumb xy-preview'>"
        sound = next((o.get("file") for o in job.outputs if o.get("kind") == "audio"), None)
        if sound and not img:  # a speech job: play it in place
            img = f"<audio controls preload='none' src='{html.escape(file_url(job.id, sound))}'></audio>"
        colour = STATUS_COLOURS.get(job.status, "#888")
        pct = 100.0 if job.status == "succeeded" else job.progress
        bar = (f"<div class='xy-bar'><div style='width:{pct:.0f}%;background:{colour}'></div></div>"
               f"<small>{pct:.0f}%</small>")
        note = job.error_zh if (zh and job.error_zh) else (job.error or message_text(job.message, zh))
        indent = "↳ " if job.parent else ""
        rows.append(
            f"<tr data-task='{job.id}' data-status='{job.status}'><td>{img}</td><td><code>{indent}{job.id[:8]}</code></td>"
            f"<td><code>{html.escape(job.engine)}</code></td>"
            f"<td><span class='xy-badge' style='background:{colour}'>{word(job.status, lang)}</span></td>"
            f"<td>{bar}</td><td>{eta_text(job, zh, now)}</td>"
            f"<td class='xy-user'>{html.escape((job.prompt or (job.params or {}).get('text') or '')[:80])}</td>"
            f"<td><small>{html.escape(str(note)[:160])}</small></td><td>{_buttons(job, zh)}</td></tr>")
    header = "".join(f"<th>{h}</th>" for h in HEAD["zh" if zh else "en"])
    return f"<table class='xy-jobs'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def signature(jobs, previews_mtime: dict, lang: str, filter_name: str, selected) -> str:
    """What the page shows, in short: the view is re-sent only when this changes."""
    now_bucket = int(time.time() // 5) if any(j.status == "running" for j in jobs) else 0  # ETA text ages
    rows = ";".join(f"{j.id}:{j.status}:{j.progress:.0f}:{j.updated_at:.3f}:{previews_mtime.get(j.id, '')}"
                    for j in jobs)
    import hashlib

    return hashlib.sha1(f"{lang}|{filter_name}|{selected}|{now_bucket}|{rows}".encode()).hexdigest()


def view(service, principal, filter_name: str, current, lang: str, last_sig: str | None = None):
    """(table, dropdown update, card, raw JSON, signature) — or no-op updates when nothing changed."""
    jobs = service.list({"status": FILTERS.get(filter_name), "limit": LIMIT}, principal)
    files = {j.id: p for j in jobs if (p := preview_of(service, j)) is not None}
    mtimes = {i: p.stat().st_mtime for i, p in files.items()}
    ids = [j.id for j in jobs]
    value = current if current in ids else (ids[0] if ids else None)
    sig = signature(jobs, mtimes, lang, filter_name, value)
    if sig == last_sig:
        return gr.update(), gr.update(), gr.update(), gr.update(), sig
    previews = {i: base64.b64encode(p.read_bytes()).decode("ascii") for i, p in files.items()}
    choices = [(job_label(j, lang), j.id) for j in jobs]
    job = next((j for j in jobs if j.id == value), None)
    status = service.status_dict(job) if job is not None else None
    card = card_markdown(status, lang) if status else ""
    return table_html(jobs, lang, previews), gr.update(choices=choices, value=value), card, status, sig


def build(service, t) -> str:
    """Returns the page-load JavaScript that makes the row buttons work."""
    with gr.Row():
        show = gr.Radio([(t(f"f_{k}"), k) for k in FILTERS], value="all", label=t("status_filter"), scale=3)
        refresh = gr.Button(t("refresh"), scale=1)
    table = gr.HTML(elem_id="job-table")
    row_action = gr.Textbox(elem_id="row-action", elem_classes="xy-hidden", show_label=False, container=False)
    with gr.Row():
        selected = gr.Dropdown(choices=[], label=t("selected_job"), scale=4, elem_id="selected-job",
                               allow_custom_value=True)
        cancel = gr.Button(t("cancel"), variant="stop", scale=1, elem_id="cancel")
        retry = gr.Button(t("retry"), scale=1, elem_id="retry")
        retry_anyway = gr.Button(t("retry_anyway"), scale=1, elem_id="retry-anyway")
        rerun = gr.Button(t("rerun"), scale=1, elem_id="rerun")
    card = gr.Markdown(elem_id="job-card")
    with gr.Accordion(t("details"), open=False, elem_id="job-raw"):
        detail = gr.JSON(show_label=False, elem_id="job-detail")
    sig = gr.State(None)
    timer = gr.Timer(1.0)

    @on("user")
    def tick_view(filter_name, current, last, request: gr.Request = None):
        return view(service, caller(request), filter_name, current, lang_of(request), last)

    @on("user")
    def refresh_view(filter_name, current, request: gr.Request = None):
        return view(service, caller(request), filter_name, current, lang_of(request), None)

    outs = [table, selected, card, detail, sig]
    timer.tick(tick_view, [show, selected, sig], outs, api_visibility="private", show_progress="hidden")
    for trigger in (refresh.click, show.change, selected.input):
        trigger(refresh_view, [show, selected], outs, api_visibility="private", show_progress="hidden")

    def action(fn):
        @on("user")
        def handler(job_id, request: gr.Request = None):
            if not job_id:
                return gr.update()
            job = fn(job_id, caller(request))
            return gr.update(value=job.id)

        return handler

    ops = {"cancel": service.cancel, "retry": service.retry,
           "rerun": lambda i, p: service.rerun(i, p, source="ui")}

    @on("user")
    def on_row(value, request: gr.Request = None):
        act, _, job_id = (value or "").split("|", 1)[0].partition(":")
        if act not in ops or not job_id:
            return gr.update()
        job = ops[act](job_id, caller(request))
        return gr.update(value=job.id)

    row_action.change(on_row, row_action, selected, api_visibility="private").then(
        refresh_view, [show, selected], outs, api_visibility="private", show_progress="hidden")
    cancel.click(action(ops["cancel"]), selected, selected, api_visibility="private")
    retry.click(action(ops["retry"]), selected, selected, api_visibility="private")
    rerun.click(action(ops["rerun"]), selected, selected, api_visibility="private")
    retry_anyway.click(action(lambda i, p: service.retry(i, p, resend=True)), selected, selected,
                       api_visibility="private")
    return ROW_JS
