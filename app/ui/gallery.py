"""Gallery tab: finished outputs, a player/viewer, the job's parameters and timings, re-run."""

from __future__ import annotations

import gradio as gr

from .api import caller, guarded
from .i18n import i18n_text, lang_of


def build(service, t) -> None:
    ws = service.settings.workspace
    with gr.Row():
        refresh = gr.Button(t("refresh"), scale=0, elem_id="gallery-refresh")
        empty = gr.Markdown()
    gallery = gr.Gallery(columns=6, rows=2, height=260, object_fit="cover", allow_preview=False, elem_id="gallery", label=t("tab_gallery"))
    ids = gr.State([])
    with gr.Row():
        with gr.Column(scale=3):
            video = gr.Video(label=t("output"), visible=False, elem_id="gallery-video", autoplay=False)
            image = gr.Image(label=t("output"), visible=False, type="filepath", elem_id="gallery-image")
        with gr.Column(scale=2):
            current = gr.Textbox(label="task_id", interactive=False, elem_id="gallery-task")
            info = gr.JSON(label=t("details"))
            rerun = gr.Button(t("rerun"), elem_id="gallery-rerun")
            rerun_note = gr.Markdown()

    def load(request: gr.Request):
        jobs = [j for j in service.list({"status": "succeeded", "limit": 60, "user": caller(request)}) if j.outputs]
        items, job_ids = [], []
        for job in jobs:
            thumb = next((o.get("thumbnail") for o in job.outputs if o.get("thumbnail")), None)
            if thumb and (ws / thumb).exists():
                items.append((str(ws / thumb), f"{job.engine} · {(job.prompt or '')[:40]}"))
                job_ids.append(job.id)
        note = "" if items else i18n_text("no_outputs", lang_of(request))
        return items, job_ids, note

    def select(job_ids, evt: gr.SelectData):
        if evt.index is None or evt.index >= len(job_ids):
            return gr.update(), gr.update(), "", None
        job = service.get(job_ids[evt.index])
        out = job.outputs[0]
        path = ws / out["file"]
        shown = path if path.exists() else None
        status = service.status_dict(job)
        details = {k: status[k] for k in ("engine", "prompt", "negative_prompt", "params", "timings", "info",
                                          "created_at")}
        if out["kind"] == "video":
            return gr.update(value=shown, visible=True), gr.update(visible=False), job.id, details
        return gr.update(visible=False), gr.update(value=shown, visible=True), job.id, details

    @guarded
    def do_rerun(job_id, request: gr.Request = None):
        if not job_id:
            return ""
        job = service.rerun(job_id, source="ui")
        return f"→ `{job.id}` ({job.status})"

    refresh.click(load, None, [gallery, ids, empty], api_visibility="private")
    gallery.select(select, ids, [video, image, current, info], api_visibility="private")
    rerun.click(do_rerun, current, rerun_note, api_visibility="private")
    return load, [gallery, ids, empty]
