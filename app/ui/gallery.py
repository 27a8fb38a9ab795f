"""Gallery tab: finished outputs (one tile per file), a player/viewer, the job's parameters and
timings, re-run, and "make a video from this still" (opens Create with an i2v engine and the
still as its first frame, referenced as ``job:<task_id>#<n>``)."""

from __future__ import annotations

import gradio as gr

from app.access import caller

from .api import on
from .i18n import i18n_text, lang_of
from .job_card import card_markdown
from .param_texts import engine_choices

MAX_TILES = 120


def i2v_choices(service, t=None) -> tuple[list[tuple[str, str]], str | None]:
    """Engines that animate a first frame, local ones first; the first available is the default."""
    engines = sorted((e for e in service.engines_info() if "i2v" in e["tasks"]), key=lambda e: e["kind"] != "local")
    choices = engine_choices(engines, t)
    return choices, next((e["id"] for e in engines if e["available"]), None)


def build(service, t, tabs=None, create: dict | None = None) -> None:
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
            current = gr.Textbox(label=t("task_id"), interactive=False, elem_id="gallery-task")
            card = gr.Markdown(elem_id="gallery-card")
            with gr.Accordion(t("details"), open=False):
                info = gr.JSON(show_label=False)
            rerun = gr.Button(t("rerun"), elem_id="gallery-rerun")
            rerun_note = gr.Markdown()
            picked = gr.State("")  # job:<task_id>#<n> of the selected still
            choices, default = i2v_choices(service, t)
            with gr.Row(visible=False, elem_id="gallery-animate") as animate_row:
                to_engine = gr.Dropdown(choices=choices, value=default, label=t("animate_engine"),
                                        elem_id="gallery-i2v-engine", scale=2)
                animate = gr.Button(t("animate"), variant="primary", elem_id="gallery-animate-btn", scale=1)

    @on("user")
    def load(request: gr.Request = None):
        jobs = [j for j in service.list({"status": "succeeded", "limit": 60}, caller(request)) if j.outputs]
        items, refs = [], []
        for job in jobs:
            for n, out in enumerate(job.outputs):  # every image of a batch gets its own tile
                thumb = out.get("thumbnail") or (out.get("file") if out.get("kind") == "image" else None)
                if thumb and (ws / thumb).exists() and len(items) < MAX_TILES:
                    more = f" #{n + 1}" if len(job.outputs) > 1 else ""
                    items.append((str(ws / thumb), f"{job.engine}{more} · {(job.prompt or '')[:40]}"))
                    refs.append([job.id, n])
        note = "" if items else i18n_text("no_outputs", lang_of(request))
        return items, refs, note

    @on("user")
    def select(refs, evt: gr.SelectData, request: gr.Request = None):
        if not isinstance(refs, list) or evt.index is None or not isinstance(evt.index, int) \
                or not 0 <= evt.index < len(refs):
            return gr.update(), gr.update(), "", "", None, gr.update(visible=False), ""
        job_id, n = refs[evt.index]
        job = service.get(job_id, caller(request))
        if not isinstance(n, int) or not 0 <= n < len(job.outputs):
            return gr.update(), gr.update(), "", "", None, gr.update(visible=False), ""
        out = job.outputs[n]
        path = ws / out["file"]
        shown = path if path.exists() else None
        status = service.status_dict(job)
        details = {k: status[k] for k in ("engine", "prompt", "negative_prompt", "params", "timings", "info",
                                          "created_at")}
        details["file"] = out["file"]
        card = card_markdown(status, lang_of(request))
        if out["kind"] == "video":
            return (gr.update(value=shown, visible=True), gr.update(visible=False), job.id, card, details,
                    gr.update(visible=False), "")
        return (gr.update(visible=False), gr.update(value=shown, visible=True), job.id, card, details,
                gr.update(visible=create is not None and shown is not None), f"job:{job.id}#{n}")

    @on("user")
    def send_to_create(ref, engine_id, request: gr.Request = None):
        lang = lang_of(request)
        if not engine_id or not isinstance(ref, str):
            gr.Warning(i18n_text("animate_pick", lang))
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        job_ref = ref.removeprefix("job:")
        still = service.image_of_job(job_ref, caller(request))
        note = i18n_text("from_job", lang).format(job=job_ref)
        return (gr.Tabs(selected="create"), gr.update(value=engine_id), gr.update(value=str(still)),
                gr.update(visible=True), ref, note)

    @on("user")
    def do_rerun(job_id, request: gr.Request = None):
        if not job_id:
            return ""
        job = service.rerun(job_id, caller(request), source="ui")
        return f"→ `{job.id}` ({job.status})"

    refresh.click(load, None, [gallery, ids, empty], api_visibility="private")
    gallery.select(select, ids, [video, image, current, card, info, animate_row, picked], api_visibility="private")
    if create is not None and tabs is not None:
        animate.click(send_to_create, [picked, to_engine],
                      [tabs, create["engine"], create["image"], create["image_col"], create["from_job"], create["from_note"]],
                      api_visibility="private")
    rerun.click(do_rerun, current, rerun_note, api_visibility="private")
    return load, [gallery, ids, empty]
