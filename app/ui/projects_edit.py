"""The Projects tab's editors: characters (reference faces with thumbnails, voice) and scenes (order,
prompt, engine, narration and dialogue with a preview of each line, the composed prompt and what the
render will do). Each button writes the YAML
through ``ProjectStore``; each ``build_*`` returns ``(load(project_id), outputs)`` for the tab."""

from __future__ import annotations

import gradio as gr

from app.access import caller
from core.errors import AppError

from profiles.voices import format_dialogue, parse_dialogue

from .api import on
from .i18n import lang_of, word
from .project_texts import HEADERS, plan_note, say, step_name

NEW = "__new__"


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(20 * 2**20 + 1)


def speech_engines(engines: dict) -> dict:
    return {eid: e for eid, e in sorted(engines.items()) if "tts" in getattr(e, "tasks", ())}


def voice_choices(engines: dict, engine_id: str | None) -> list[tuple[str, str]]:
    """The voices of one speech engine as dropdown choices (aliases first: narrator, male, female)."""
    engine = speech_engines(engines).get(engine_id or "")
    rows = engine.voices() if engine is not None else []
    return [(row["id"] if row["id"] == row.get("name") else f"{row['id']} · {row.get('name', '')}", row["id"])
            for row in rows]


def voice_value(engine_v, voice_v, speed_v) -> dict | None:
    """The form's voice as project.yaml / characters.yaml write it; no engine: the default voice."""
    if not engine_v:
        return None
    return {"engine": engine_v, "voice": (voice_v or "narrator"), "speed": float(speed_v or 1.0)}


def voice_form(label_key: str, engines: dict, elem_id: str, t):
    """An engine dropdown (labelled by the text key ``label_key``), a voice dropdown that follows it, and a
    speed slider."""
    with gr.Row():
        engine = gr.Dropdown([(t("choice_default"), "")] + [(e, e) for e in speech_engines(engines)],
                             label=t(label_key), scale=2, elem_id=f"{elem_id}-engine")
        voice = gr.Dropdown([], label=t("vf_voice"), allow_custom_value=True, scale=2, elem_id=f"{elem_id}-voice")
        speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label=t("vf_speed"), scale=1)

    @on("user")
    def engine_changed(engine_v, voice_v, request: gr.Request = None):
        choices = voice_choices(engines, engine_v)
        ids = [c[1] for c in choices]
        return gr.update(choices=choices, value=voice_v if voice_v in ids else (ids[0] if ids else None))

    engine.change(engine_changed, [engine, voice], voice, api_visibility="private", show_progress="hidden")
    return engine, voice, speed


def voice_updates(engines: dict, value) -> list:
    """The three voice fields for a saved voice (a schema ``Voice``, a dict, or None)."""
    if value is None:
        return [gr.update(value=""), gr.update(choices=[], value=None), 1.0]
    data = value if isinstance(value, dict) else value.model_dump()
    return [gr.update(value=data["engine"]), gr.update(choices=voice_choices(engines, data["engine"]),
                                                        value=data["voice"]), data.get("speed", 1.0)]


# --- characters -----------------------------------------------------------------------------
def build_characters(projects, project, t, engines: dict | None = None):
    engines = engines or {}
    with gr.Row():
        pick = gr.Dropdown([], label=t("ch_pick"), scale=3, elem_id="character-select")
        cid = gr.Textbox(label="ID", placeholder=t("ch_id_ph"), scale=2, elem_id="character-id")
        name = gr.Textbox(label=t("ch_name"), scale=3)
    prompt = gr.Textbox(label=t("ch_prompt"), lines=2)
    description = gr.Textbox(label=t("ch_notes"), lines=1)
    strength = gr.Slider(0.0, 1.5, value=0.8, step=0.05, label=t("ch_strength"))
    v_engine, v_voice, v_speed = voice_form("vf_lines", engines, "character-voice", t)
    with gr.Row():
        faces = gr.Gallery(label=t("ch_faces"), columns=4, height=180, scale=3)
        face = gr.Image(label=t("ch_face"), type="filepath", height=180, scale=2)
    with gr.Row():
        save = gr.Button(t("ch_save"), variant="primary", elem_id="character-save")
        add_face = gr.Button(t("ch_add_face"), elem_id="character-add-face")
        clear_faces = gr.Button(t("ch_clear_faces"), elem_id="character-clear-faces")
        delete = gr.Button(t("ch_delete"), variant="stop", elem_id="character-delete")
    note = gr.Markdown()
    form = [cid, name, prompt, description, strength, faces, v_engine, v_voice, v_speed]

    def fill(pid, character_id, request):
        if not pid or not character_id or character_id == NEW:
            return ["", "", "", "", 0.8, [], *voice_updates(engines, None)]
        p = projects.scoped(caller(request)).get(pid)
        c = p.characters.get(character_id)
        if c is None:
            return ["", "", "", "", 0.8, [], *voice_updates(engines, None)]
        return [character_id, c.name, c.prompt, c.description, c.instantid_strength,
                [(str(path), path.name) for path in p.faces(character_id)], *voice_updates(engines, c.voice)]

    @on("user")
    def load(pid, request: gr.Request = None):
        try:
            chars = projects.scoped(caller(request)).get(pid).characters if pid else {}
        except AppError:  # the error is shown by the project view
            chars = {}
        choices = [(f"{c.name} ({k})", k) for k, c in chars.items()] + [(t("ch_new"), NEW)]
        first = next(iter(chars), NEW)
        return [gr.update(choices=choices, value=first), *fill(pid, first, request), ""]

    @on("user")
    def do_save(pid, _pick, cid_v, name_v, prompt_v, desc_v, strength_v, engine_v=None, voice_v=None, speed_v=1.0,
                request: gr.Request = None):
        store = projects.scoped(caller(request))
        store.upsert_character(pid, (cid_v or "").strip(), {"name": name_v, "prompt": prompt_v,
                                                             "description": desc_v, "instantid_strength": strength_v,
                                                             "voice": voice_value(engine_v, voice_v, speed_v)})
        return load_keep(pid, cid_v.strip(), request)

    @on("user")
    def do_add_face(pid, cid_v, path, request: gr.Request = None):
        if not path:
            raise gr.Error(say("choose_image", lang_of(request)))
        store = projects.scoped(caller(request))
        p = store.get(pid)
        c = p.characters.get(cid_v)
        if c is None:
            raise gr.Error(say("save_character_first", lang_of(request)))
        rel = store.add_asset(pid, cid_v, _read(path), stem="face")
        store.upsert_character(pid, cid_v, {"reference_images": [*c.reference_images, rel]})
        return load_keep(pid, cid_v, request)

    @on("user")
    def do_clear(pid, cid_v, request: gr.Request = None):
        projects.scoped(caller(request)).upsert_character(pid, cid_v, {"reference_images": []})
        return load_keep(pid, cid_v, request)

    @on("user")
    def do_delete(pid, cid_v, request: gr.Request = None):
        projects.scoped(caller(request)).remove_character(pid, cid_v)
        return load(pid, request=request)

    def load_keep(pid, character_id, request):
        out = load(pid, request=request)
        out[0] = gr.update(choices=out[0]["choices"], value=character_id)
        profiles = projects.scoped(caller(request)).get(pid).config.character_profiles
        return [out[0], *fill(pid, character_id, request), f"✅ {profiles}"]

    @on("user")
    def pick_changed(pid, character_id, request: gr.Request = None):
        return fill(pid, character_id, request)

    outs = [pick, *form, note]
    pick.change(pick_changed, [project, pick], form, api_visibility="private")
    save.click(do_save, [project, pick, cid, name, prompt, description, strength, v_engine, v_voice, v_speed], outs,
               api_visibility="private")
    add_face.click(do_add_face, [project, cid, face], outs, api_visibility="private")
    clear_faces.click(do_clear, [project, cid], outs, api_visibility="private")
    delete.click(do_delete, [project, cid], outs, api_visibility="private")
    return load, outs


# --- scenes ---------------------------------------------------------------------------------
SCENE_FIELDS = ["id", "title", "prompt", "characters", "duration", "engine", "seed", "camera", "motion",
                "transition"]


def build_scenes(projects, episodes, project, engine_ids, t):
    # the headers are set with the rows, in the caller's language (gr.Dataframe shows I18n headers raw)
    table = gr.Dataframe(headers=["#"], interactive=False, elem_id="scenes-table")
    with gr.Row():
        pick = gr.Dropdown([], label=t("sc_pick"), scale=3, elem_id="scene-select")
        up = gr.Button("↑", scale=0, elem_id="scene-up")
        down = gr.Button("↓", scale=0, elem_id="scene-down")
        new = gr.Button(t("sc_new"), scale=1, elem_id="scene-new")
        delete = gr.Button(t("sc_delete"), variant="stop", scale=1, elem_id="scene-delete")
    with gr.Row():
        sid = gr.Textbox(label="ID", scale=1)
        title = gr.Textbox(label=t("pj_title"), scale=2)
        duration = gr.Number(label=t("sc_duration"), value=5.0, scale=1)
        seed = gr.Number(label=t("sc_seed"), precision=0, scale=1)
    prompt = gr.Textbox(label=t("prompt"), lines=3, elem_id="scene-prompt")
    with gr.Row():
        characters = gr.Dropdown([], multiselect=True, label=t("sc_characters"), scale=3)
        engine = gr.Dropdown([(t("choice_project_default"), "")] + [(e, e) for e in engine_ids],
                             label=t("engine"), scale=2)
        transition = gr.Dropdown([(t("choice_project_default"), ""), (t("ps_cut"), "cut"),
                                  (t("ps_crossfade"), "crossfade")], label=t("ps_transition"), scale=1)
    with gr.Row():
        camera = gr.Textbox(label=t("sc_camera"), scale=1)
        motion = gr.Textbox(label=t("sc_motion"), scale=1)
    narration = gr.Textbox(label=t("sc_narration"), lines=2, elem_id="scene-narration")
    dialogue = gr.Textbox(label=t("sc_dialogue"), lines=3, placeholder=t("sc_dialogue_ph"), elem_id="scene-dialogue")
    with gr.Row():
        line_pick = gr.Dropdown([], label=t("sc_line"), scale=3, elem_id="line-select",
                                allow_custom_value=True)  # its choices follow the text boxes
        play = gr.Button(t("sc_play"), scale=1, elem_id="line-play")
        heard = gr.Audio(label=t("sc_heard"), type="filepath", interactive=False, scale=3, elem_id="line-audio")
    heard_note = gr.Markdown()
    heard_job = gr.State("")
    heard_timer = gr.Timer(1.0, active=False)
    composed = gr.Textbox(label=t("sc_composed"), interactive=False, lines=3, elem_id="composed-prompt")
    plan_md = gr.Markdown(elem_id="scene-plan")
    with gr.Row():
        keyframe = gr.Image(label=t("sc_keyframe"), type="filepath", height=160, scale=2)
        set_key = gr.Button(t("sc_set_key"), scale=1, elem_id="scene-set-keyframe")
        save = gr.Button(t("sc_save"), variant="primary", scale=1, elem_id="scene-save")
    form = [sid, title, duration, seed, prompt, characters, engine, transition, camera, motion, narration, dialogue]

    def plan_error(s: dict, lang: str) -> str:
        return (s.get("plan_error_zh") if lang == "zh" else None) or s["plan_error"]

    def rows(pid, request):
        status, lang = episodes.project_status(pid, caller(request)), lang_of(request)
        return status, [[i + 1, s["id"], s["title"], s["duration"], ", ".join(s["characters"]), s["engine"] or "",
                         "⚠ " + plan_error(s, lang) if s["plan_error"] else
                         " → ".join(step_name(x, lang) for x in s["steps"])]
                        for i, s in enumerate(status["scenes"])]

    def speaker(line: dict, lang: str) -> str:
        return f"`{line['speaker']}`" if line.get("character") else say("narrator", lang)

    def table_value(data: list, lang: str) -> dict:
        return {"headers": HEADERS[lang], "data": data}

    def fill(pid, scene_id, request):
        try:
            p = projects.scoped(caller(request)).get(pid)
            scene = p.scene(scene_id)
        except AppError:  # a new scene, or a project that does not load
            return ["", "", 5.0, None, "", gr.update(), "", "", "", "", "", "", "", "", gr.update(choices=[], value=None)]
        full, lang = episodes.project_status(pid, caller(request)), lang_of(request)
        status = {s["id"]: s for s in full["scenes"]}.get(scene_id, {})
        pictures = [step_name(x, lang) for x in status.get("steps", []) if not x.startswith("tts")]
        md = (f"⚠ {plan_error(status, lang)}" if status.get("plan_error") else
              "**" + " → ".join(pictures) + "**" + "".join(f"\n- {plan_note(n, lang)}" for n in status.get("notes", [])))
        md += "".join(f"\n- 🔊 {step_name(x['step'], lang)} · {speaker(x, lang)} · `{x['engine']}/{x['voice']}` · "
                      f"~{x['estimate']:g}s" + (f" · ♻ {say('cached', lang)}" if x["cached"] else "")
                      for x in status.get("speech", []))
        if full.get("timing_error"):
            md += f"\n\n⚠ {(full.get('timing_error_zh') if lang == 'zh' else None) or full['timing_error']}"
        return [scene.id, scene.title, scene.duration, scene.seed, scene.prompt,
                gr.update(choices=list(p.characters), value=scene.characters), scene.engine or "",
                scene.transition or "", scene.camera, scene.motion, scene.narration, format_dialogue(scene.lines),
                p.composed(scene)[0], md, line_choices(p, scene.narration, format_dialogue(scene.lines), lang=lang)]

    def line_choices(p, narration_v, dialogue_v, keep=None, lang="en"):
        """The preview dropdown: one entry per line of the form as it stands (nothing while it does not parse)."""
        try:
            lines = preview_lines(p, narration_v, dialogue_v)
        except AppError:
            return gr.update(choices=[], value=None)
        choices = [(f"{x.index} · {say('narrator', lang) if not x.character else x.speaker}: {x.text[:24]}", x.index)
                   for x in lines]
        ids = [c[1] for c in choices]
        return gr.update(choices=choices, value=keep if keep in ids else (ids[0] if ids else None))

    def preview_lines(p, narration_v, dialogue_v):
        from profiles.schema import Scene
        from profiles.voices import speech_lines

        lines = parse_dialogue(dialogue_v or "", p.characters)
        scene = Scene.model_validate({"id": "preview", "prompt": "-", "narration": narration_v or "", "lines": lines})
        return speech_lines(p, scene)

    @on("user")
    def load(pid, keep=None, request: gr.Request = None):
        try:
            status, data = rows(pid, request) if pid else ({"scenes": []}, [])
        except AppError:
            status, data = {"scenes": []}, []
        ids = [s["id"] for s in status["scenes"]]
        value = keep if keep in ids else (ids[0] if ids else None)
        return [table_value(data, lang_of(request)), gr.update(choices=ids, value=value), *fill(pid, value, request), ""]

    @on("user")
    def preview(pid, prompt_v, chars_v, camera_v, motion_v, request: gr.Request = None):
        from profiles.styles import compose_prompt

        try:
            p = projects.scoped(caller(request)).get(pid)
        except AppError:
            return ""
        fragments = [p.characters[c].prompt for c in chars_v or [] if c in p.characters]
        return compose_prompt(p.config.style, prompt_v or "", fragments, camera_v or "", motion_v or "")

    @on("user")
    def do_save(pid, old_id, sid_v, title_v, duration_v, seed_v, prompt_v, chars_v, engine_v, trans_v, camera_v,
                motion_v, narration_v="", dialogue_v="", request: gr.Request = None):
        store = projects.scoped(caller(request))
        scene = {"id": (sid_v or "").strip(), "title": title_v or "", "duration": duration_v, "prompt": prompt_v or "",
                 "characters": chars_v or [], "engine": engine_v or None,
                 "seed": int(seed_v) if seed_v not in (None, "") else None, "camera": camera_v or "",
                 "motion": motion_v or "", "transition": trans_v or None, "narration": (narration_v or "").strip(),
                 "lines": parse_dialogue(dialogue_v or "", store.get(pid).characters)}

        def change(scenes):
            at = next((i for i, s in enumerate(scenes) if s["id"] == old_id), None)
            if at is None:
                scenes.append(scene)
            else:
                scenes[at] = {**scenes[at], **scene}
            return scenes

        store.edit_scenes(pid, change)
        return [*load(pid, scene["id"], request=request)[:-1], f"✅ {store.get(pid).config.scene_profiles}"]

    def do_move(pid, scene_id, offset, request):
        projects.scoped(caller(request)).move_scene(pid, scene_id, offset)
        return load(pid, scene_id, request=request)

    @on("user")
    def do_up(pid, scene_id, request: gr.Request = None):
        return do_move(pid, scene_id, -1, request)

    @on("user")
    def do_down(pid, scene_id, request: gr.Request = None):
        return do_move(pid, scene_id, 1, request)

    @on("user")
    def do_new(pid, request: gr.Request = None):
        store = projects.scoped(caller(request))
        p = store.get(pid)
        n = len(p.scenes) + 1
        while any(s.id == f"s{n:02d}" for s in p.scenes):
            n += 1
        store.upsert_scene(pid, {"id": f"s{n:02d}", "prompt": say("new_scene_prompt", lang_of(request)),
                                 "duration": 5.0})
        return load(pid, f"s{n:02d}", request=request)

    @on("user")
    def do_delete(pid, scene_id, request: gr.Request = None):
        projects.scoped(caller(request)).remove_scene(pid, scene_id)
        return load(pid, request=request)

    @on("user")
    def do_keyframe(pid, scene_id, path, request: gr.Request = None):
        if not path:
            raise gr.Error(say("choose_image", lang_of(request)))
        store = projects.scoped(caller(request))
        rel = store.add_asset(pid, "keyframes", _read(path), stem=scene_id)
        store.upsert_scene(pid, {"id": scene_id, "keyframe": rel})
        return load(pid, scene_id, request=request)

    @on("user")
    def pick_changed(pid, scene_id, request: gr.Request = None):
        return fill(pid, scene_id, request)

    @on("user")
    def lines_changed(pid, narration_v, dialogue_v, keep, request: gr.Request = None):
        try:
            p = projects.scoped(caller(request)).get(pid)
        except AppError:
            return gr.update(choices=[], value=None)
        return line_choices(p, narration_v, dialogue_v, keep, lang=lang_of(request))

    def heard_file(job) -> str:
        return str(episodes.settings.workspace / job.outputs[0]["file"])

    @on("user")
    def do_play(pid, narration_v, dialogue_v, index, request: gr.Request = None):
        """Synthesise one line as the form has it, as a job of the caller's (or hand back the finished one)."""
        from app.episode_steps import speech_job
        from profiles.voices import speech_request

        principal = caller(request)
        p = projects.scoped(principal).get(pid)
        episodes.access.check_write(pid, principal)  # the job is the project's: a shared read-only one is not
        try:
            index = int(index)
        except (TypeError, ValueError):
            index = -1
        line = next((x for x in preview_lines(p, narration_v, dialogue_v) if x.index == index), None)
        if line is None:
            raise gr.Error(say("write_line_first", lang_of(request)))
        job, reused = speech_job(episodes.service, principal, speech_request(pid, line))
        if job.status == "succeeded":
            return heard_file(job), "", gr.update(active=False), f"♻ {say('cached_line', lang_of(request))}"
        return None, job.id, gr.update(active=True), f"⏳ {line.voice.engine}/{line.voice.voice} …"

    @on("user")
    def poll_play(job_id, request: gr.Request = None):
        if not job_id:
            return gr.update(), "", gr.update(active=False), gr.update()
        job, lang = episodes.service.get(job_id, caller(request)), lang_of(request)
        if job.status == "succeeded":
            return heard_file(job), "", gr.update(active=False), f"✅ {job.outputs[0].get('duration', 0):.1f}s"
        if job.status in ("failed", "cancelled"):
            error = (job.error_zh if lang == "zh" else None) or job.error or word(job.status, lang)
            return None, "", gr.update(active=False), f"⚠ {error}"
        return gr.update(), job_id, gr.update(active=True), f"⏳ {word(job.status, lang)} {job.progress:.0f}%"

    note = gr.Markdown()
    outs = [table, pick, *form, composed, plan_md, line_pick, note]
    pick.change(pick_changed, [project, pick], [*form, composed, plan_md, line_pick], api_visibility="private")
    for comp in (narration, dialogue):
        comp.blur(lines_changed, [project, narration, dialogue, line_pick], line_pick, api_visibility="private",
                  show_progress="hidden")
    heard_outs = [heard, heard_job, heard_timer, heard_note]
    play.click(do_play, [project, narration, dialogue, line_pick], heard_outs, api_visibility="private")
    heard_timer.tick(poll_play, heard_job, heard_outs, api_visibility="private", show_progress="hidden")
    for comp in (prompt, characters, camera, motion):
        comp.change(preview, [project, prompt, characters, camera, motion], composed, api_visibility="private",
                    show_progress="hidden")
    save.click(do_save, [project, pick, *form], outs, api_visibility="private")
    up.click(do_up, [project, pick], outs, api_visibility="private")
    down.click(do_down, [project, pick], outs, api_visibility="private")
    new.click(do_new, project, outs, api_visibility="private")
    delete.click(do_delete, [project, pick], outs, api_visibility="private")
    set_key.click(do_keyframe, [project, pick, keyframe], outs, api_visibility="private")
    return load, outs
