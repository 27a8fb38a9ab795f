"""Create tab: pick an engine, write the prompt, choose the shot in human terms (aspect ratio,
size, seconds, a draft/standard/fine preset), see what it will cost, submit.

The human controls write into the engine's raw parameters (``controls.human_params``); the raw
parameters and the memory/speed switches stay reachable in a closed "advanced" section, and
the API takes them unchanged. The form reads the raw parameters when it submits."""

from __future__ import annotations

import gradio as gr

from app.access import caller, handler

from . import controls
from .api import on
from .forms import component_for, lora_picker, params_from
from .i18n import i18n_text, lang_of, word
from .param_texts import engine_choices

IMAGE_TASKS = {"i2v", "kf2v", "ref2v"}
public = handler("public")  # pure UI state: touches nothing that belongs to anyone


def _initial(eng) -> tuple[str | None, str | None, float | None, str | None]:
    """The human controls' starting state: the engine's own defaults (cloud: unset, the vendor decides)."""
    f = eng.Params.model_fields
    has = controls.has_controls(eng)
    if "width" not in f:
        return None, None, None, None
    w, h = f["width"].default, f["height"].default
    aspect = min(controls.aspects_for(eng), key=lambda a: abs(controls.ratio_of(a) - w / h))
    seconds = None
    if has["duration"] and "num_frames" in f:
        fps = f["fps"].default if "fps" in f else 16
        seconds = round(f["num_frames"].default / fps)
    return aspect, "medium", seconds, "standard" if has["preset"] else None


def build(service, t) -> dict:
    """Returns the handles other tabs fill in (the gallery's "make a video from this still")."""
    infos = {e["id"]: e for e in service.engines_info()}
    first_ok = next((e["id"] for e in infos.values() if e["available"]), next(iter(infos), None))

    with gr.Row():
        with gr.Column(scale=3):
            engine = gr.Dropdown(choices=engine_choices(infos.values(), t), value=first_ok, label=t("engine"),
                                 elem_id="engine")
            engine_note = gr.Markdown(elem_id="engine-note")
            prompt = gr.Textbox(label=t("prompt"), placeholder=t("prompt_ph"), lines=4, elem_id="prompt")
            negative = gr.Textbox(label=t("negative_prompt"), lines=2, elem_id="negative-prompt")
            from_job = gr.State("")  # "job:<task_id>#<n>" while the image is a previous job's output
            from_note = gr.Markdown(elem_id="image-from-job")
            with gr.Row():
                # gradio 6 shows "[object Object]" for an upload component's I18n label: a Markdown label instead
                with gr.Column(visible=False) as image_col:
                    gr.Markdown(t("image"))
                    image = gr.Image(show_label=False, type="filepath", height=220, elem_id="input-image")
                with gr.Column(visible=False) as last_col:
                    gr.Markdown(t("last_image"))
                    last_image = gr.Image(show_label=False, type="filepath", height=220)
            with gr.Row():
                random_seed = gr.Checkbox(value=True, label=t("random_seed"), elem_id="random-seed")
                seed = gr.Number(value=-1, precision=0, label=t("seed"), interactive=True, elem_id="seed")
        with gr.Column(scale=2):
            form_area = gr.Column(elem_id="params-form")
    result = gr.Markdown(visible=False, elem_id="submit-result")
    pending = gr.State(None)  # {"engine", "params"} from the rendered form, for the submit below

    @on("user")
    def do_submit(form, prompt_v, negative_v, image_v, last_v, from_v, random_v, seed_v, request: gr.Request = None):
        """Outside ``gr.render`` on purpose: events of rendered components reach their handlers
        without the request's scope, so the caller could not be known there."""
        if not isinstance(form, dict) or form.get("engine") not in service.engines:
            return gr.update()
        engine_id, params = form["engine"], dict(form.get("params") or {})
        eng = service.engines[engine_id]
        if "seed" in eng.Params.model_fields and not random_v and seed_v is not None and seed_v >= 0:
            params["seed"] = int(seed_v)
        req = {"engine": engine_id, "prompt": prompt_v or "", "negative_prompt": negative_v or "", "params": params}
        takes_image = bool(IMAGE_TASKS & set(eng.tasks))  # a hidden image is not sent to a t2v engine
        source = (from_v or {"path": image_v}) if image_v and takes_image else None
        if source and "i2v" not in eng.tasks and "ref2v" in eng.tasks:
            req["reference_images"] = [source]  # e.g. InstantID's reference face
        elif source:
            req["image"] = source  # job:<id>#<n> keeps the still's lineage (no copy)
        if last_v and "kf2v" in eng.tasks:
            req["last_image"] = {"path": last_v}
        job = service.submit(req, caller(request), source="ui")
        lang = lang_of(request)
        return gr.update(value=f"✅ {i18n_text('submitted', lang)}: `{job.id}` · {word(job.status, lang)}",
                         visible=True)

    @on("public")
    def engine_changed(engine_id, request: gr.Request = None):
        e = next((x for x in service.engines_info() if x["id"] == engine_id), None)
        if e is None:
            return gr.update(value=""), gr.update(visible=False), gr.update(visible=False)
        lang = lang_of(request)
        reason = e["reason_zh"] if lang == "zh" else e["reason"]
        note = "" if e["available"] else f"⚠ **{i18n_text('engine_unavailable', lang)}:** {reason}"
        takes_image = bool(IMAGE_TASKS & set(e["tasks"]))
        return (gr.update(value=note), gr.update(visible=takes_image), gr.update(visible="kf2v" in e["tasks"]))

    engine.change(engine_changed, engine, [engine_note, image_col, last_col], api_visibility="private")

    def lora_field(eng, field):
        choices, folder = eng.field_choices("loras") or ([], service.settings.models_dir / "loras")
        return lora_picker(field, choices, folder, t)

    with form_area:
        gr.Markdown(t("params"))

        @gr.render(inputs=engine)
        @public
        def render_form(engine_id, request: gr.Request = None):
            eng = service.engines.get(engine_id)
            if eng is None:
                return
            model = eng.Params
            # a speech engine's text is the prompt box (JobService reads it when params has no text)
            names = [n for n in model.model_fields if n != "seed" and not (n == "text" and "tts" in eng.tasks)]
            has = controls.has_controls(eng)
            aspect0, quality0, seconds0, preset0 = _initial(eng)
            human = []
            if has["aspect"]:
                human.append(gr.Radio(controls.aspects_for(eng), value=aspect0, label=t("aspect"), elem_id="aspect",
                                      interactive=True))
            if has["quality"]:
                human.append(gr.Radio([(t(f"q_{q}"), q) for q in controls.QUALITIES], value=quality0,
                                      label=t("quality"), elem_id="quality", interactive=True))
            if has["duration"]:
                human.append(gr.Number(value=seconds0, step=1, label=t("duration"),
                                       interactive=True,
                                       elem_id="duration"))
            if has["preset"]:
                human.append(gr.Radio([(t(f"preset_{p}"), p) for p in controls.PRESETS], value=preset0,
                                      label=t("preset"), elem_id="preset", interactive=True))
            kinds = [k for k in ("aspect", "quality", "duration", "preset") if has[k]]

            def make(n):
                field = model.model_fields[n]
                return lora_field(eng, field) if n == "loras" else component_for(n, field, t, model)

            creative = [n for n in names if n not in controls.CONTROLLED | controls.MEMORY]
            advanced = [n for n in names if n in controls.CONTROLLED | controls.MEMORY]
            comps = {n: make(n) for n in creative}
            estimate = gr.Markdown(first_estimate(eng, aspect0, quality0, seconds0, preset0, lang_of(request)),
                                   elem_id="estimate")
            with gr.Accordion(t("advanced"), open=False, elem_id="advanced"):
                comps.update({n: make(n) for n in advanced})
            ordered = [comps[n] for n in names]
            button = gr.Button(t("submit"), variant="primary", elem_id="submit")
            mapped = [n for n in names if n in controls.CONTROLLED]

            @on("public")
            def apply_human(*values, request: gr.Request = None):
                state = dict(zip(kinds, values))
                raw = controls.human_params(eng, state.get("aspect"), state.get("quality"), state.get("duration"),
                                            state.get("preset"))
                return [gr.update(value=raw[n]) if n in raw else gr.update() for n in mapped]

            show = wire_estimate(service, eng, names, ordered, estimate, lang_of(request))
            for comp in human:
                comp.input(apply_human, human, [comps[n] for n in mapped], api_visibility="private").then(
                    show, ordered, estimate, api_visibility="private", show_progress="hidden")

            @on("public")  # reads the form into a State; the submit itself runs outside the render
            def collect(*values):
                return {"engine": engine_id, "params": params_from(model, names, list(values))}

            button.click(collect, ordered, pending, api_visibility="private").then(
                do_submit, [pending, prompt, negative, image, last_image, from_job, random_seed, seed], result,
                api_visibility="private")

    random_seed.change(public(lambda r: gr.update(interactive=not r)), random_seed, seed, api_visibility="private")
    for event in (image.upload, image.clear):  # the person chose another image: no lineage any more
        event(public(lambda: ("", "")), None, [from_job, from_note], api_visibility="private")
    return {"engine": engine, "image": image, "from_job": from_job, "from_note": from_note, "image_col": image_col}


def first_estimate(eng, aspect, quality, seconds, preset, lang: str) -> str:
    from app.estimate import estimate

    params = controls.human_params(eng, aspect, quality, seconds, preset)
    return f"**{i18n_text('estimate', lang)}:** {estimate(eng, params, lang)['text']}"


def wire_estimate(service, eng, names, comps, box, lang: str):
    """The estimate under the controls: money (cloud) or time from this machine's history (local),
    recomputed when a raw parameter changes (the human controls write into those). ``lang`` is the
    render's: events of rendered components reach their handlers without the request's headers."""
    from app.estimate import estimate

    @on("public")  # reads prices and run-time medians, nothing that belongs to anyone
    def show(*values):
        try:
            params = params_from(eng.Params, names, list(values))
        except (ValueError, TypeError):
            return gr.update()
        return f"**{i18n_text('estimate', lang)}:** {estimate(eng, params, lang)['text']}"

    for comp in comps:  # .input: the person's own edits (.change also fires while the form is rebuilt)
        if hasattr(comp, "input"):
            comp.input(show, comps, box, api_visibility="private", show_progress="hidden")
    return show
