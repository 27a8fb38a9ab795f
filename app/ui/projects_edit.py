"""The Projects tab's editors: characters (reference faces with thumbnails) and scenes (order,
prompt, engine, the composed prompt and what the render will do). Each button writes the YAML
through ``ProjectStore``; each ``build_*`` returns ``(load(project_id), outputs)`` for the tab."""

from __future__ import annotations

import gradio as gr

from app.access import caller
from core.errors import AppError

from .api import on

NEW = "__new__"


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(20 * 2**20 + 1)


# --- characters -----------------------------------------------------------------------------
def build_characters(projects, project, t):
    with gr.Row():
        pick = gr.Dropdown([], label="角色 / Character", scale=3, elem_id="character-select")
        cid = gr.Textbox(label="ID", placeholder="hanli", scale=2)
        name = gr.Textbox(label="名字 / Name", scale=3)
    prompt = gr.Textbox(label="提示词片段 / Prompt fragment", lines=2)
    description = gr.Textbox(label="备注 / Notes", lines=1)
    strength = gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="InstantID strength")
    with gr.Row():
        faces = gr.Gallery(label="参考人脸 / Reference faces", columns=4, height=180, scale=3)
        face = gr.Image(label="上传人脸 / Upload a face", type="filepath", height=180, scale=2)
    with gr.Row():
        save = gr.Button("保存角色 / Save character", variant="primary")
        add_face = gr.Button("添加人脸 / Add face")
        clear_faces = gr.Button("清空人脸 / Clear faces")
        delete = gr.Button("删除角色 / Delete", variant="stop")
    note = gr.Markdown()
    form = [cid, name, prompt, description, strength, faces]

    def fill(pid, character_id, request):
        if not pid or not character_id or character_id == NEW:
            return ["", "", "", "", 0.8, []]
        p = projects.scoped(caller(request)).get(pid)
        c = p.characters.get(character_id)
        if c is None:
            return ["", "", "", "", 0.8, []]
        return [character_id, c.name, c.prompt, c.description, c.instantid_strength,
                [(str(path), path.name) for path in p.faces(character_id)]]

    @on("user")
    def load(pid, request: gr.Request = None):
        try:
            chars = projects.scoped(caller(request)).get(pid).characters if pid else {}
        except AppError:  # the error is shown by the project view
            chars = {}
        choices = [(f"{c.name} ({k})", k) for k, c in chars.items()] + [("＋ 新角色 / New", NEW)]
        first = next(iter(chars), NEW)
        return [gr.update(choices=choices, value=first), *fill(pid, first, request), ""]

    @on("user")
    def do_save(pid, _pick, cid_v, name_v, prompt_v, desc_v, strength_v, request: gr.Request = None):
        store = projects.scoped(caller(request))
        store.upsert_character(pid, (cid_v or "").strip(), {"name": name_v, "prompt": prompt_v,
                                                             "description": desc_v, "instantid_strength": strength_v})
        return load_keep(pid, cid_v.strip(), request)

    @on("user")
    def do_add_face(pid, cid_v, path, request: gr.Request = None):
        if not path:
            raise gr.Error("先选择一张图片 / Choose an image first.")
        store = projects.scoped(caller(request))
        p = store.get(pid)
        c = p.characters.get(cid_v)
        if c is None:
            raise gr.Error("先保存角色 / Save the character first.")
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
    save.click(do_save, [project, pick, cid, name, prompt, description, strength], outs, api_visibility="private")
    add_face.click(do_add_face, [project, cid, face], outs, api_visibility="private")
    clear_faces.click(do_clear, [project, cid], outs, api_visibility="private")
    delete.click(do_delete, [project, cid], outs, api_visibility="private")
    return load, outs


# --- scenes ---------------------------------------------------------------------------------
SCENE_FIELDS = ["id", "title", "prompt", "characters", "duration", "engine", "seed", "camera", "motion",
                "transition"]


def build_scenes(projects, episodes, project, engine_ids, t):
    table = gr.Dataframe(headers=["#", "id", "title", "s", "characters", "engine", "plan"], interactive=False,
                         elem_id="scenes-table")
    with gr.Row():
        pick = gr.Dropdown([], label="场景 / Scene", scale=3, elem_id="scene-select")
        up = gr.Button("↑", scale=0)
        down = gr.Button("↓", scale=0)
        new = gr.Button("＋ 新场景 / New", scale=1)
        delete = gr.Button("删除 / Delete", variant="stop", scale=1)
    with gr.Row():
        sid = gr.Textbox(label="ID", scale=1)
        title = gr.Textbox(label="标题 / Title", scale=2)
        duration = gr.Number(label="时长 / Duration (s)", value=5.0, scale=1)
        seed = gr.Number(label="seed（空 = 自动 / empty = derived)", precision=0, scale=1)
    prompt = gr.Textbox(label="提示词 / Prompt", lines=3, elem_id="scene-prompt")
    with gr.Row():
        characters = gr.Dropdown([], multiselect=True, label="角色 / Characters", scale=3)
        engine = gr.Dropdown([("（项目默认 / project default）", "")] + [(e, e) for e in engine_ids],
                             label="引擎 / Engine", scale=2)
        transition = gr.Dropdown([("（项目默认 / default）", ""), "cut", "crossfade"], label="transition", scale=1)
    with gr.Row():
        camera = gr.Textbox(label="镜头 / Camera", scale=1)
        motion = gr.Textbox(label="运动 / Motion", scale=1)
    composed = gr.Textbox(label="合成提示词 / Composed prompt (sent to the engine)", interactive=False, lines=3,
                          elem_id="composed-prompt")
    plan_md = gr.Markdown()
    with gr.Row():
        keyframe = gr.Image(label="关键帧 / Keyframe (optional)", type="filepath", height=160, scale=2)
        set_key = gr.Button("设为关键帧 / Set keyframe", scale=1)
        save = gr.Button("保存场景 / Save scene", variant="primary", scale=1)
    form = [sid, title, duration, seed, prompt, characters, engine, transition, camera, motion]

    def rows(pid, request):
        status = episodes.project_status(pid, caller(request))
        return status, [[i + 1, s["id"], s["title"], s["duration"], ", ".join(s["characters"]), s["engine"] or "",
                         "⚠ " + s["plan_error"] if s["plan_error"] else " → ".join(s["steps"])]
                        for i, s in enumerate(status["scenes"])]

    def fill(pid, scene_id, request):
        try:
            p = projects.scoped(caller(request)).get(pid)
            scene = p.scene(scene_id)
        except AppError:  # a new scene, or a project that does not load
            return ["", "", 5.0, None, "", gr.update(), "", "", "", "", "", ""]
        status = {s["id"]: s for s in episodes.project_status(pid, caller(request))["scenes"]}.get(scene_id, {})
        md = (f"⚠ {status['plan_error']}" if status.get("plan_error") else
              "**" + " → ".join(status.get("steps", [])) + "**" + "".join(f"\n- {n}" for n in status.get("notes", [])))
        return [scene.id, scene.title, scene.duration, scene.seed, scene.prompt,
                gr.update(choices=list(p.characters), value=scene.characters), scene.engine or "",
                scene.transition or "", scene.camera, scene.motion, p.composed(scene)[0], md]

    @on("user")
    def load(pid, keep=None, request: gr.Request = None):
        try:
            status, data = rows(pid, request) if pid else ({"scenes": []}, [])
        except AppError:
            status, data = {"scenes": []}, []
        ids = [s["id"] for s in status["scenes"]]
        value = keep if keep in ids else (ids[0] if ids else None)
        return [data, gr.update(choices=ids, value=value), *fill(pid, value, request), ""]

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
                motion_v, request: gr.Request = None):
        scene = {"id": (sid_v or "").strip(), "title": title_v or "", "duration": duration_v, "prompt": prompt_v or "",
                 "characters": chars_v or [], "engine": engine_v or None,
                 "seed": int(seed_v) if seed_v not in (None, "") else None, "camera": camera_v or "",
                 "motion": motion_v or "", "transition": trans_v or None}

        def change(scenes):
            at = next((i for i, s in enumerate(scenes) if s["id"] == old_id), None)
            if at is None:
                scenes.append(scene)
            else:
                scenes[at] = {**scenes[at], **scene}
            return scenes

        store = projects.scoped(caller(request))
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
        store.upsert_scene(pid, {"id": f"s{n:02d}", "prompt": "a new scene", "duration": 5.0})
        return load(pid, f"s{n:02d}", request=request)

    @on("user")
    def do_delete(pid, scene_id, request: gr.Request = None):
        projects.scoped(caller(request)).remove_scene(pid, scene_id)
        return load(pid, request=request)

    @on("user")
    def do_keyframe(pid, scene_id, path, request: gr.Request = None):
        if not path:
            raise gr.Error("先选择一张图片 / Choose an image first.")
        store = projects.scoped(caller(request))
        rel = store.add_asset(pid, "keyframes", _read(path), stem=scene_id)
        store.upsert_scene(pid, {"id": scene_id, "keyframe": rel})
        return load(pid, scene_id, request=request)

    @on("user")
    def pick_changed(pid, scene_id, request: gr.Request = None):
        return fill(pid, scene_id, request)

    note = gr.Markdown()
    outs = [table, pick, *form, composed, plan_md, note]
    pick.change(pick_changed, [project, pick], [*form, composed, plan_md], api_visibility="private")
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
