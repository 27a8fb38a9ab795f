"""Create tab: pick an engine, write the prompt, set the engine's parameters, submit."""

from __future__ import annotations

import gradio as gr

from app.access import caller, handler

from .api import on
from .forms import component_for, lora_picker, params_from
from .i18n import both, i18n_text, lang_of

IMAGE_TASKS = {"i2v", "kf2v", "ref2v"}
public = handler("public")  # pure UI state: touches nothing that belongs to anyone


def build(service, t) -> dict:
    """Returns the handles other tabs fill in (the gallery's "make a video from this still")."""
    infos = {e["id"]: e for e in service.engines_info()}
    choices = [(f"{e['title'] or e['id']}{'' if e['available'] else ' ⚠'}", e["id"]) for e in infos.values()]
    first_ok = next((e["id"] for e in infos.values() if e["available"]), next(iter(infos), None))

    with gr.Row():
        with gr.Column(scale=3):
            engine = gr.Dropdown(choices=choices, value=first_ok, label=t("engine"), elem_id="engine")
            engine_note = gr.Markdown(elem_id="engine-note")
            prompt = gr.Textbox(label=t("prompt"), placeholder=t("prompt_ph"), lines=4, elem_id="prompt")
            negative = gr.Textbox(label=t("negative_prompt"), lines=2, elem_id="negative-prompt")
            from_job = gr.State("")  # "job:<task_id>#<n>" while the image is a previous job's output
            from_note = gr.Markdown(elem_id="image-from-job")
            with gr.Row():
                image = gr.Image(label=both("image"), type="filepath", visible=False, height=220, elem_id="input-image")
                last_image = gr.Image(label=both("last_image"), type="filepath", visible=False, height=220)
            with gr.Row():
                random_seed = gr.Checkbox(value=True, label=t("random_seed"), elem_id="random-seed")
                seed = gr.Number(value=-1, precision=0, label="seed", interactive=True, elem_id="seed")
        with gr.Column(scale=2):
            form_area = gr.Column(elem_id="params-form")
    result = gr.JSON(label=t("submitted"), visible=False, elem_id="submit-result")

    @on("public")
    def engine_changed(engine_id, request: gr.Request = None):
        info = service.engines_info()
        e = next((x for x in info if x["id"] == engine_id), None)
        if e is None:
            return gr.update(value=""), gr.update(visible=False), gr.update(visible=False)
        note = "" if e["available"] else f"⚠ **{i18n_text('engine_unavailable', lang_of(request))}:** {e['reason']}"
        takes_image = bool(IMAGE_TASKS & set(e["tasks"]))
        return (gr.update(value=note), gr.update(visible=takes_image),
                gr.update(visible="kf2v" in e["tasks"]))

    engine.change(engine_changed, engine, [engine_note, image, last_image], api_visibility="private")

    def lora_field(eng, field):
        choices, folder = eng.field_choices("loras") or ([], service.settings.models_dir / "loras")
        return lora_picker(field, choices, folder)

    with form_area:
        gr.Markdown("### 参数 · Parameters")

        @gr.render(inputs=engine)
        @public
        def render_form(engine_id):
            eng = service.engines.get(engine_id)
            if eng is None:
                return
            model = eng.Params
            # a speech engine's text is the prompt box (JobService reads it when params has no text)
            names = [n for n in model.model_fields if n != "seed" and not (n == "text" and "tts" in eng.tasks)]
            comps = [lora_field(eng, model.model_fields[n]) if n == "loras" else component_for(n, model.model_fields[n])
                     for n in names]
            button = gr.Button(t("submit"), variant="primary", elem_id="submit")

            @on("user")
            def do_submit(prompt_v, negative_v, image_v, last_v, from_v, random_v, seed_v, *values,
                          request: gr.Request = None):
                params = params_from(model, names, list(values))
                if "seed" in model.model_fields and not random_v and seed_v is not None and seed_v >= 0:
                    params["seed"] = int(seed_v)
                req = {"engine": engine_id, "prompt": prompt_v or "", "negative_prompt": negative_v or "",
                       "params": params}
                takes_image = bool(IMAGE_TASKS & set(eng.tasks))  # a hidden image is not sent to a t2v engine
                source = (from_v or {"path": image_v}) if image_v and takes_image else None
                if source and "i2v" not in eng.tasks and "ref2v" in eng.tasks:
                    req["reference_images"] = [source]  # e.g. InstantID's reference face
                elif source:
                    req["image"] = source  # job:<id>#<n> keeps the still's lineage (no copy)
                if last_v and "kf2v" in eng.tasks:
                    req["last_image"] = {"path": last_v}
                job = service.submit(req, caller(request), source="ui")
                return gr.update(value={"task_id": job.id, "status": job.status, "seed": job.params.get("seed")},
                                 visible=True)

            button.click(do_submit, [prompt, negative, image, last_image, from_job, random_seed, seed, *comps], result,
                         api_visibility="private")

    random_seed.change(public(lambda r: gr.update(interactive=not r)), random_seed, seed, api_visibility="private")
    for event in (image.upload, image.clear):  # the person chose another image: no lineage any more
        event(public(lambda: ("", "")), None, [from_job, from_note], api_visibility="private")
    return {"engine": engine, "image": image, "from_job": from_job, "from_note": from_note}
