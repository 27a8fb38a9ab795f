"""Projects tab: open / create / duplicate / import / export a project, edit its settings, its
characters and scenes (``projects_edit``), render the episode and follow its progress.
Every edit writes the project's YAML; nothing about a project is kept in the UI.

Named endpoints for scripts (``gradio_client``):

    /projects (project_id="")            -> {"projects": [...]}  or one project's status
    /render_project (project_id, options) -> {task_id, status, project, name, scenes}
                                             options: {"scenes": [ids], "name": "episode"}
    /episode (task_id)                   -> the episode with each scene's step jobs
"""

from __future__ import annotations

import html
import json
import uuid

import gradio as gr

from app.episodes import EpisodeService
from core.errors import AppError
from profiles.archive import MAX_ZIP_BYTES, export_zip, import_zip
from profiles.styles import STYLES

from app.access import caller

from . import draft_view, plan_view, projects_edit, storyboard_view
from .api import on, one_at_a_time
from .i18n import lang_of, word
from .project_texts import plan_note, say, step_name

ACTIVE = ("queued", "running")
STATUS_ICON = {"succeeded": "✅", "failed": "❌", "cancelled": "⏹", "running": "⏳", "queued": "…", "waiting": "·"}


def register(episodes: EpisodeService) -> None:
    """The named endpoints (declared inside the current Blocks)."""

    @on("user")
    def projects(project_id: str | None = None, request: gr.Request = None) -> dict:
        if project_id:
            return episodes.project_status(project_id, caller(request))
        return {"projects": episodes.access.summaries(caller(request))}

    @on("user")
    def render_project(project_id: str, options: dict | None = None, request: gr.Request = None) -> dict:
        options = options if isinstance(options, dict) else {}
        job = episodes.render(project_id, caller(request), scenes=options.get("scenes") or None,
                              name=options.get("name") or None, source="api")
        return {"task_id": job.id, "status": job.status, "project": project_id, "name": job.params["name"],
                "scenes": job.params["scenes"]}

    @on("user")
    def episode(task_id: str, request: gr.Request = None) -> dict:
        return episodes.episode_status(task_id, caller(request))

    for fn in (projects, render_project, episode):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)


def project_choices(projects, principal) -> list[tuple[str, str]]:
    return [(f"{p['title']} ({p['id']})" + (" ⚠" if p["error"] else "") + ("" if p["writable"] else " 🔒"), p["id"])
            for p in projects.summaries(principal)]


def progress_html(status: dict | None, lang: str) -> str:
    if not status:
        return ""
    zh = lang == "zh"
    rows = []
    def cell(s: dict) -> str:
        text = f"{STATUS_ICON.get(s['status'], '')} {html.escape(step_name(s['step'], lang))} · {html.escape(s['engine'])}"
        return text + (" ♻" if s["reused"] else "") + (f" {s['progress']:.0f}%" if s["status"] == "running" else "")

    for scene in status["scenes"]:
        cells = " → ".join(cell(s) for s in scene["steps"])
        rows.append(f"<tr><td><code>{html.escape(scene['scene'])}</code></td><td>{scene['duration']:g}s</td>"
                    f"<td>{cells}</td></tr>")
    head = (f"<p><b>{html.escape(word(status['status'], lang))}</b> · {status['progress']:.0f}% · "
            f"{html.escape(plan_note(status.get('message') or '', lang))}</p>")
    if status.get("error"):
        error = status["error_zh"] if zh and status.get("error_zh") else status["error"]
        head += f"<p style='color:#d64545'>{html.escape(error)}</p>"
    return head + f"<table class='xy-jobs'>{''.join(rows)}</table><small>{say('reused_legend', lang)}</small>"


def build(service, t) -> None:
    episodes = EpisodeService(service)
    projects = episodes.access
    ws = service.settings.workspace
    engine_ids = sorted(service.engines)
    with gr.Row():  # the choices are the caller's: filled at page load
        project = gr.Dropdown(choices=[], value=None, label=t("pj_project"), scale=4, elem_id="project-select",
                              allow_custom_value=True)  # (the page's config must not list other users' projects)
        refresh = gr.Button(t("refresh"), scale=1)
    error = gr.Markdown(elem_id="project-error")
    with gr.Accordion(t("pj_manage"), open=False, elem_id="project-manage"):
        with gr.Row():
            new_id = gr.Textbox(label=t("pj_new_id"), placeholder="my-series", scale=2)
            new_title = gr.Textbox(label=t("pj_title"), placeholder=t("pj_title_ph"), scale=3)
            create = gr.Button(t("pj_create"), scale=1)
            duplicate = gr.Button(t("pj_duplicate"), scale=1)
        with gr.Row():
            upload = gr.File(label=t("pj_import"), file_types=[".zip"], type="filepath", scale=3)
            export = gr.Button(t("pj_export"), scale=1)
            download = gr.File(label=t("pj_download"), interactive=False, scale=3)
    with gr.Tabs():
        with gr.Tab(t("pt_storyboard"), elem_id="tab-storyboard"):
            board_load, board_outs = storyboard_view.build(service, episodes, project, t)
        with gr.Tab(t("pt_settings"), elem_id="tab-project-settings"):
            with gr.Row():
                title = gr.Textbox(label=t("pj_title"), scale=3)
                style = gr.Dropdown([(t(f"style_{s.id}"), s.id) for s in STYLES.values()], label=t("ps_style"))
                fps = gr.Number(label=t("ps_fps"), precision=0)
                resolution = gr.Textbox(label=t("ps_resolution"))
            with gr.Row():
                blank = [(t("choice_none"), "")]
                default_engine = gr.Dropdown(blank + [(e, e) for e in engine_ids], label=t("ps_default_engine"))
                still_engine = gr.Dropdown(engine_ids, label=t("ps_still_engine"))
                i2v_engine = gr.Dropdown(engine_ids, label=t("ps_i2v_engine"))
                t2v_engine = gr.Dropdown(engine_ids, label=t("ps_t2v_engine"))
            negative = gr.Textbox(label=t("negative_prompt"), lines=2)
            with gr.Row():
                seed = gr.Number(label=t("seed"), precision=0)
                seed_policy = gr.Radio([(t("ps_seed_fixed"), "fixed"), (t("ps_seed_random"), "random")],
                                       label=t("ps_seed_policy"))
                upscale = gr.Checkbox(label=t("ps_upscale"))
                transition = gr.Radio([(t("ps_cut"), "cut"), (t("ps_crossfade"), "crossfade")],
                                      label=t("ps_transition"))
                fade = gr.Number(label=t("ps_fade"))
            gr.Markdown(t("ps_engine_params"))  # gr.Code shows an I18n label as "[object Object]"
            engine_params = gr.Code(show_label=False, language="json")
            with gr.Accordion(t("ps_sound"), open=True):
                n_engine, n_voice, n_speed = projects_edit.voice_form("vf_narrator", service.engines, "narrator-voice", t)
                with gr.Row():
                    timing = gr.Radio([(t("ps_timing_voice"), "voice"), (t("ps_timing_fixed"), "fixed")],
                                      label=t("ps_timing"), scale=2)
                    padding = gr.Number(label=t("ps_padding"), scale=1)
                    clip_audio = gr.Radio([(t("ps_keep"), "keep"), (t("ps_mute"), "mute")],
                                          label=t("ps_clip_audio"), scale=2)
                with gr.Row():
                    subtitles = gr.Radio([(t("ps_sub_file"), "file"), (t("ps_sub_burn"), "burn"),
                                          (t("ps_sub_off"), "off")], label=t("ps_subtitles"), scale=2)
                    sub_font = gr.Textbox(label=t("ps_font"), scale=2)
                    sub_size = gr.Number(label=t("ps_size"), precision=0, scale=1)
                    sub_position = gr.Radio([(t(f"ps_{p}"), p) for p in ("bottom", "top", "middle")],
                                            label=t("ps_position"), scale=2)
                    sub_outline = gr.Number(label=t("ps_outline"), scale=1)
                with gr.Row():
                    music = gr.Dropdown([], label=t("ps_music"), allow_custom_value=True, scale=3)
                    music_upload = gr.File(label=t("ps_music_upload"), file_types=["audio"], type="filepath",
                                           scale=2)
                    music_volume = gr.Slider(0.0, 1.0, step=0.05, label=t("ps_music_volume"), scale=2)
                    ducking = gr.Checkbox(label=t("ps_ducking"), scale=1)
            save_settings = gr.Button(t("ps_save"), variant="primary", elem_id="save-project-settings")
        with gr.Tab(t("pt_characters"), elem_id="tab-characters"):
            chars_load, chars_outs = projects_edit.build_characters(projects, project, t, service.engines)
            with gr.Accordion(t("ch_design"), open=False, elem_id="char-design-panel"):
                design_load, design_who = storyboard_view.design_panel(
                    service, storyboard_view.DesignService(service, episodes.store), project, "char-design", t)
        with gr.Tab(t("pt_scenes"), elem_id="tab-scenes"):
            scenes_load, scenes_outs = projects_edit.build_scenes(projects, episodes, project, engine_ids, t)
        with gr.Tab(t("pt_render"), elem_id="tab-render"):
            with gr.Row():
                name = gr.Textbox(value="episode", label=t("rd_name"), scale=2)
                only = gr.Dropdown([], multiselect=True, label=t("rd_only"), scale=4)
                render = gr.Button(t("rd_render"), variant="primary", scale=1, elem_id="render-episode")
            plan_box = plan_view.build(episodes, project, only)
            cancel = gr.Button(t("rd_cancel"), variant="stop", elem_id="cancel-episode")
            episode_id = gr.Textbox(label=t("rd_task"), interactive=False, elem_id="episode-task")
            progress = gr.HTML(elem_id="episode-progress")
            with gr.Row():
                renders = gr.Dropdown([], label=t("rd_renders"), scale=3)
                player = gr.Video(label=t("output"), scale=4)
            sidecar = gr.JSON(label=t("rd_sidecar"))
            timer = gr.Timer(1.5, active=False)
        with gr.Tab(t("pt_draft"), elem_id="tab-draft"):
            draft_view.build(service, projects, project, t)

    sound_fields = [n_engine, n_voice, n_speed, timing, padding, clip_audio, subtitles, sub_font, sub_size,
                    sub_position, sub_outline, music, music_volume, ducking]
    settings_fields = [title, style, fps, resolution, default_engine, still_engine, i2v_engine, t2v_engine, negative,
                       seed, seed_policy, upscale, transition, fade, engine_params, *sound_fields]
    names = ["title", "style", "fps", "resolution", "default_engine", "still_engine", "i2v_engine", "t2v_engine",
             "negative_prompt", "seed", "seed_policy", "upscale", "transition", "transition_duration"]

    def music_choices(p) -> list[tuple[str, str]]:
        from profiles.schema import AUDIO_SUFFIXES

        found = sorted(str(f.relative_to(p.assets_dir)).replace("\\", "/") for f in p.assets_dir.rglob("*")
                       if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES) if p.assets_dir.is_dir() else []
        return [(t("choice_none"), "")] + [(f"assets/{f}", f) for f in found]

    def sound_values(p) -> list:
        cfg = p.config
        style = cfg.subtitle_style
        return [*projects_edit.voice_updates(service.engines, cfg.narrator_voice), cfg.timing, cfg.speech_padding,
                cfg.clip_audio, cfg.subtitles, style.font, style.size, style.position, style.outline,
                gr.update(choices=music_choices(p), value=cfg.music or ""), cfg.music_volume, cfg.ducking]

    def sound_changes(values) -> dict:
        (engine_v, voice_v, speed_v, timing_v, padding_v, clip_v, subs_v, font_v, size_v, position_v, outline_v,
         music_v, volume_v, ducking_v) = values
        return {"narrator_voice": projects_edit.voice_value(engine_v, voice_v, speed_v), "timing": timing_v or "voice",
                "speech_padding": 0.3 if padding_v in (None, "") else padding_v, "clip_audio": clip_v or "keep",
                "subtitles": subs_v or "file",
                "subtitle_style": {"font": font_v or "", "size": int(size_v or 0), "position": position_v or "bottom",
                                   "outline": 2.0 if outline_v in (None, "") else outline_v},
                "music": music_v or None, "music_volume": 0.3 if volume_v in (None, "") else volume_v,
                "ducking": bool(ducking_v)}

    def render_choices(pid, principal):
        projects.check_read(pid, principal)
        return [(f"{r['name']} v{r['version']}", f"{r['name']}_v{r['version']}")
                for r in reversed(episodes.renders(pid))]

    @on("user")
    def open_project(pid, request: gr.Request = None):
        lang = lang_of(request)
        principal = caller(request)
        empty = [gr.update()] * len(settings_fields)
        if not pid:
            return ["", *empty, gr.update(choices=[]), gr.update(choices=[]), "", gr.update(active=False)]
        try:
            p = projects.scoped(principal).get(pid)
        except AppError as exc:  # a project file with a mistake: show it where the user looks
            text = exc.text(lang)
            return [f"⚠ {text}", *empty, gr.update(choices=[]), gr.update(choices=[]), "", gr.update(active=False)]
        cfg = p.config.model_dump(mode="json")
        values = [cfg[n] if n != "default_engine" else (cfg[n] or "") for n in names]
        values.append(json.dumps(cfg["engine_params"], ensure_ascii=False, indent=2))
        values += sound_values(p)
        latest = next(iter(episodes.episodes(pid, principal, limit=1)), None)
        render_list = render_choices(pid, principal)
        return ["", *values, gr.update(choices=[(s.id, s.id) for s in p.scenes], value=[]),
                gr.update(choices=render_list, value=render_list[0][1] if render_list else None),
                latest.id if latest else "", gr.update(active=bool(latest and latest.status in ACTIVE))]

    open_outs = [error, *settings_fields, only, renders, episode_id, timer]
    root = gr.context.Context.root_block  # the page's first load opens the selected project
    triggers = [project.change, refresh.click] + ([root.load] if root is not None else [])
    # Each panel's reads wait in one queue, one at a time, so the last drawn is the newest: with the
    # studio's default of 16 at once, a quick switch from A to B could end with A's read drawn last,
    # under B's name. The storyboard shares its queue with its own Refresh and timer.
    panels = [(open_project, open_outs, one_at_a_time("project-open")),
              (chars_load, chars_outs, one_at_a_time("project-characters")),
              (scenes_load, scenes_outs, one_at_a_time("project-scenes")),
              (board_load, board_outs, storyboard_view.BOARD_QUEUE),
              (design_load, design_who, one_at_a_time("project-design"))]
    for trigger in triggers:
        for load, outs, queue in panels:
            trigger(load, project, outs, api_visibility="private", **queue)

    @on("user")
    def list_projects(current=None, request: gr.Request = None):
        choices = project_choices(projects, caller(request))
        ids = [c[1] for c in choices]
        return gr.update(choices=choices, value=current if current in ids else (ids[0] if ids else None))

    refresh.click(list_projects, project, project, api_visibility="private")
    if root is not None:
        root.load(list_projects, project, project, api_visibility="private")

    @on("user")
    def do_save_settings(pid, *values, request: gr.Request = None):
        if not pid:
            return gr.update()
        projects.check_write(pid, caller(request))
        n = len(names)
        changes = dict(zip(names, values[:n]))
        changes["default_engine"] = changes["default_engine"] or None
        changes["fps"], changes["seed"] = int(changes["fps"] or 16), int(changes["seed"] or 0)
        try:
            changes["engine_params"] = json.loads(values[n] or "{}")
        except json.JSONDecodeError as exc:
            raise gr.Error(say("bad_json", lang_of(request), msg=exc.msg, line=exc.lineno)) from None
        if len(values) == n + 1 + len(sound_fields):
            changes.update(sound_changes(values[n + 1:]))
        projects.scoped(caller(request)).update_config(pid, changes)
        return "✅ project.yaml"

    save_settings.click(do_save_settings, [project, *settings_fields], error, api_visibility="private")

    @on("user")
    def do_upload_music(pid, path, request: gr.Request = None):
        if not pid or not path:
            return gr.update(), gr.update()
        store = projects.scoped(caller(request))
        with open(path, "rb") as fh:
            rel = store.add_audio(pid, fh.read(50 * 2**20 + 1), path)
        store.update_config(pid, {"music": rel})
        return gr.update(choices=music_choices(store.get(pid)), value=rel), f"✅ {say('music_saved', lang_of(request))}"

    music_upload.upload(do_upload_music, [project, music_upload], [music, error], api_visibility="private")

    @on("user")
    def do_create(pid, new_title_v, request: gr.Request = None):
        principal = caller(request)
        pid, title_v = (pid or "").strip(), (new_title_v or "").strip()
        p = projects.create(pid, title_v or pid, principal)
        return gr.update(choices=project_choices(projects, principal), value=p.id)

    @on("user")
    def do_duplicate(pid, new_pid, request: gr.Request = None):
        principal = caller(request)
        p = projects.duplicate(pid, (new_pid or "").strip() or None, principal)
        return gr.update(choices=project_choices(projects, principal), value=p.id)

    @on("user")
    def do_import(path, request: gr.Request = None):
        if not path:
            return gr.update()
        principal = caller(request)
        with open(path, "rb") as fh:
            pid, _skipped = import_zip(projects.store, fh.read(MAX_ZIP_BYTES + 1))
        projects.imported(pid, principal)
        return gr.update(choices=project_choices(projects, principal), value=pid)

    @on("user")
    def do_export(pid, request: gr.Request = None):
        if not pid:
            return None
        projects.check_read(pid, caller(request))
        folder = service.settings.staging_dir / "exports" / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{pid}.zip"
        target.write_bytes(export_zip(projects.store, pid))
        return str(target)

    create.click(do_create, [new_id, new_title], project, api_visibility="private")
    duplicate.click(do_duplicate, [project, new_id], project, api_visibility="private")
    upload.upload(do_import, upload, project, api_visibility="private")
    export.click(do_export, project, download, api_visibility="private")

    @on("user")
    def do_render(pid, name_v, only_v, request: gr.Request = None):
        job = episodes.render(pid, caller(request), scenes=only_v or None, name=(name_v or "").strip() or None,
                              source="ui")
        return job.id, gr.update(active=True)

    @on("user")
    def poll(job_id, request: gr.Request = None):
        if not job_id:
            return "", gr.update(active=False), gr.update()
        principal = caller(request)
        status = episodes.episode_status(job_id, principal)
        active = status["status"] in ACTIVE
        renders_update = gr.update()
        if not active and status.get("project"):
            render_list = render_choices(status["project"], principal)
            renders_update = gr.update(choices=render_list, value=render_list[0][1] if render_list else None)
        return progress_html(status, lang_of(request)), gr.update(active=active), renders_update

    @on("user")
    def do_cancel(job_id, request: gr.Request = None):
        if job_id:
            service.cancel(job_id, caller(request))
        return gr.update(active=True)

    @on("user")
    def show_render(pid, key, request: gr.Request = None):
        """``key`` is ``<name>_v<N>`` of one of the project's renders; nothing else is opened."""
        if not pid or not key:
            return None, None
        projects.check_read(pid, caller(request))
        found = next((r for r in episodes.renders(pid) if f"{r['name']}_v{r['version']}" == key), None)
        if found is None:
            return None, None
        side = ws / found["sidecar"]
        return str(ws / found["file"]), json.loads(side.read_text(encoding="utf-8")) if side.exists() else None

    render.click(do_render, [project, name, only], [episode_id, timer], api_visibility="private")
    cancel.click(do_cancel, episode_id, timer, api_visibility="private")
    timer.tick(poll, episode_id, [progress, timer, renders], api_visibility="private", show_progress="hidden")
    episode_id.change(poll, episode_id, [progress, timer, renders], api_visibility="private")
    renders.change(show_render, [project, renders], [player, sidecar], api_visibility="private")
    renders.change(plan_view.refresh(episodes), [project, only], plan_box, api_visibility="private",
                   **plan_view.PLAN_QUEUE)  # reuse after a render
    register(episodes)
    storyboard_view.register(episodes, storyboard_view.DesignService(service, episodes.store))
