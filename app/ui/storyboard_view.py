"""Projects → Storyboard (分镜): a grid of scene cards (latest still or clip, narration, characters, engine,
duration, render status), character cards (face, voice, Design), and the episode's timeline; rendered as
HTML from the project files and the job rows on every refresh.

A card's buttons write ``<verb>:<scene id>`` into the hidden ``#sb-action`` box; its change runs the
action (render, re-roll, move, insert, split, merge). The toolbar below the grid does the same for the
scene chosen in its dropdown.

Named endpoints for scripts (``gradio_client``):

    /storyboard (project_id)                          -> the storyboard as data (app.storyboard.storyboard)
    /design_character ({project, character, count?, engine?, params?}) -> {jobs, images, reference}
    /pick_design ({project, character, ref: "<task_id>#<n>"})          -> {character, reference}
"""

from __future__ import annotations

import html
import time

import gradio as gr

from app import storyboard as sb
from app.access import caller
from app.character_design import DEFAULT_COUNT, MAX_COUNT, DesignService

from .api import on, one_at_a_time
from .i18n import lang_of, word
from .project_texts import PROJECT_TEXTS, say

ICON = {"succeeded": "✅", "failed": "❌", "cancelled": "⏹", "running": "⏳", "queued": "…", "none": "·"}
STATUS = {"succeeded": ("完成", "done"), "failed": ("失败", "failed"), "cancelled": ("已取消", "cancelled"),
          "running": ("渲染中", "rendering"), "queued": ("排队中", "queued"), "none": ("未渲染", "not rendered")}
# a card's buttons (zh, en): the same words as the toolbar's (project_texts sb_<verb>)
VERBS = {v: PROJECT_TEXTS[f"sb_{v}"][::-1] for v in ("render", "reroll", "up", "down", "insert", "split", "merge")}
CSS = """<style>
#sb-action{display:none}
.xy-sb-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px}
.xy-sb-card{border:1px solid #8884;border-radius:8px;padding:8px;font-size:13px}
.xy-sb-card video,.xy-sb-card img.xy-sb-shot{width:100%;border-radius:6px;background:#0002;min-height:60px}
.xy-sb-empty{height:90px;border-radius:6px;background:#8882;display:flex;align-items:center;justify-content:center}
.xy-sb-bar{height:6px;background:#8883;border-radius:3px}.xy-sb-bar>div{height:6px;background:#2f7de1;border-radius:3px}
.xy-sb-card button{margin:2px;padding:1px 6px;font-size:12px;border:1px solid #8886;border-radius:4px;cursor:pointer}
.xy-sb-tl{display:flex;height:22px;margin:8px 0;border-radius:4px;overflow:hidden}
.xy-sb-tl>div{border-right:1px solid #fff;font-size:11px;overflow:hidden;white-space:nowrap;padding:2px}
.xy-sb-chars{display:flex;flex-wrap:wrap;gap:10px}.xy-sb-char{border:1px solid #8884;border-radius:8px;padding:6px;width:190px}
.xy-sb-char img{width:64px;height:64px;object-fit:cover;border-radius:50%;float:left;margin-right:6px}
</style>"""
_CLICK = ("(function(a){{var t=document.querySelector('#sb-action textarea,#sb-action input');t.value=a+'|'+Date.now();"
          "t.dispatchEvent(new Event('input',{{bubbles:true}}));}})('{verb}:{sid}')")


def _t(zh: bool, pair) -> str:
    return pair[0] if zh else pair[1]


def _esc(text) -> str:
    return html.escape(str(text or ""))


def _shot(scene: dict) -> str:
    clip, still = scene.get("clip"), scene.get("still")
    if clip and clip["status"] == "succeeded" and clip.get("file"):
        name = clip["file"].rsplit("/", 1)[-1]
        return (f"<video class='xy-sb-clip' controls muted preload='metadata' "
                f"src='/files/{_esc(clip['id'])}/{_esc(name)}'></video>")
    if still and still["status"] == "succeeded" and still.get("file"):
        name = still["file"].rsplit("/", 1)[-1]
        return f"<img class='xy-sb-shot' src='/files/{_esc(still['id'])}/{_esc(name)}' alt='still'>"
    return f"<div class='xy-sb-empty'>{ICON.get(scene['status'], '·')}</div>"


def _card(scene: dict, zh: bool) -> str:
    sid = scene["id"]
    running = [j for j in (scene.get("still"), scene.get("clip")) if j and j["status"] == "running"]
    progress = running[0]["progress"] if running else (100.0 if scene["status"] == "succeeded" else 0.0)
    state = f"{ICON.get(scene['status'], '')} {_t(zh, STATUS.get(scene['status'], ('', scene['status'])))}"
    if running:
        state += f" {progress:.0f}%"
    error = next((j for j in (scene.get("clip"), scene.get("still")) if j and j["status"] == "failed"), None)
    lines = "".join(f"<div><code>{_esc(ln['character'])}</code>{'：' if zh else ': '}"
                    f"<span class='xy-user'>{_esc(ln['text'])}</span></div>" for ln in scene["lines"][:4])
    chain = ""
    if scene.get("continue"):
        chain = "<div>⛓ " + ("接续上一场景的最后一帧" if zh else "continues the previous scene's last frame") + "</div>"
    if scene.get("from"):
        chain += f"<div>♻ {'复用' if zh else 'reuses'} <code>{_esc(scene['from'])}</code></div>"
    people = ", ".join(f"<code>{_esc(c)}</code>" for c in scene["characters"]) or "—"
    buttons = "".join(f"<button type='button' data-verb='{v}' onclick=\"{_CLICK.format(verb=v, sid=sid)}\">"
                      f"{_esc(_t(zh, label))}</button>" for v, label in VERBS.items())
    return (f"<div class='xy-sb-card' data-scene='{_esc(sid)}' data-status='{_esc(scene['status'])}'>"
            f"<div><b><code>{_esc(sid)}</code></b> <span class='xy-user'>{_esc(scene['title'])}</span> · "
            f"{scene['duration']:g}s · <code>{_esc(scene.get('engine') or '?')}</code></div>{_shot(scene)}"
            f"<div class='xy-sb-bar'><div style='width:{progress:.0f}%'></div></div>"
            f"<div class='xy-sb-state'>{state}</div>"
            + (f"<div style='color:#d64545'>{_esc((error.get('error_zh') if zh else None) or error.get('error'))}</div>"
               if error else "")
            + f"<div class='xy-user'>{_esc(scene['narration'][:160])}</div>{lines}"
            f"<div>👤 {people}</div>{chain}<div>{buttons}</div></div>")


def _timeline(data: dict, zh: bool) -> str:
    total = sum(s["duration"] for s in data["scenes"]) or 1.0
    colours = ("#2f7de155", "#2e9d5755")
    cells = "".join(f"<div title='{_esc(s['id'])} {s['duration']:g}s' style='width:{100 * s['duration'] / total:.2f}%;"
                    f"background:{colours[i % 2]}'>{_esc(s['id'])}</div>" for i, s in enumerate(data["scenes"]))
    label = "时间线" if zh else "Timeline"
    return (f"<div><b>{label}</b> · {len(data['scenes'])} {'个场景' if zh else 'scenes'} · "
            f"{'总长' if zh else 'total'} <span class='xy-sb-total'>{data['duration']:.1f}</span> s</div>"
            f"<div class='xy-sb-tl'>{cells}</div>")


def _character(c: dict, zh: bool) -> str:
    face = f"<img src='{c['face']}' alt='face'>" if c["face"] else "<div style='float:left;width:64px'>🙂</div>"
    voice = (f"<code>{_esc(c['voice']['engine'])} · {_esc(c['voice']['voice'])}</code>" if c["voice"]
             else ("默认声音" if zh else "default voice"))
    hint = "" if c["face"] else ("<div>⚠ 无参考脸：可用“设计”生成" if zh else "<div>⚠ no reference face: use Design") + "</div>"
    return (f"<div class='xy-sb-char' data-character='{_esc(c['id'])}'>{face}<b class='xy-user'>{_esc(c['name'])}</b>"
            f"<div><code>{_esc(c['id'])}</code></div><div>🔊 {voice}</div>{hint}"
            f"<div style='clear:both;font-size:12px'><code>{_esc(', '.join(c['scenes']))}</code></div></div>")


def storyboard_html(data: dict | None, lang: str) -> str:
    zh = lang == "zh"
    if not data:
        return CSS + ("<p>请先选择项目。</p>" if zh else "<p>Choose a project first.</p>")
    head = ""
    if data.get("plan_error"):
        head = f"<p style='color:#d64545'>⚠ {_esc(data['plan_error']['zh' if zh else 'en'])}</p>"
    empty = "<p>还没有场景：在“起草”中粘贴章节。</p>" if zh else "<p>No scenes yet: paste a chapter in Draft.</p>"
    cards = "".join(_card(s, zh) for s in data["scenes"]) or empty
    chars = "".join(_character(c, zh) for c in data["characters"])
    grid = f"<div class='xy-sb-grid' id='sb-grid' data-project='{_esc(data['project'])}'>{cards}</div>"
    return (CSS + head + _timeline(data, zh) + grid
            + f"<h4>{'角色' if zh else 'Characters'}</h4><div class='xy-sb-chars'>{chars}</div>")


def register(episodes, design: DesignService) -> None:
    @on("user")
    def storyboard(project_id: str, request: gr.Request = None) -> dict:
        return sb.storyboard(episodes, project_id, caller(request))

    @on("user")
    def design_character(request_body: dict, request: gr.Request = None) -> dict:
        body = request_body if isinstance(request_body, dict) else {}
        count = body.get("count", DEFAULT_COUNT)
        return design.design(body.get("project"), body.get("character"), caller(request), count=count,
                             engine=body.get("engine"), params=body.get("params") if isinstance(body.get("params"), dict) else None)

    @on("user")
    def pick_design(request_body: dict, request: gr.Request = None) -> dict:
        body = request_body if isinstance(request_body, dict) else {}
        return design.pick(body.get("project"), body.get("character"), body.get("ref"), caller(request))

    for fn in (storyboard, design_character, pick_design):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)


def design_panel(service, design: DesignService, project, prefix: str, t):
    """Character Design: pick a character, make N candidates, use one as its reference face."""
    ws = service.settings.workspace
    with gr.Row():
        who = gr.Dropdown([], label=t("ch_pick"), allow_custom_value=True, scale=2, elem_id=f"{prefix}-who")
        count = gr.Slider(1, MAX_COUNT, value=DEFAULT_COUNT, step=1, label=t("dz_count"), scale=2)
        go = gr.Button(t("dz_go"), scale=1, elem_id=f"{prefix}-go")
        check = gr.Button(t("dz_check"), scale=1, elem_id=f"{prefix}-refresh")
    gallery = gr.Gallery(label=t("dz_gallery"), columns=4, height=220, elem_id=f"{prefix}-gallery")
    with gr.Row():
        use = gr.Button(t("dz_use"), variant="primary", elem_id=f"{prefix}-use")
        info = gr.Markdown(elem_id=f"{prefix}-info")
    refs = gr.State([])
    chosen = gr.State(None)

    def shown(out):
        return [(str(ws / i["file"]), i["ref"]) for i in out["images"]], [i["ref"] for i in out["images"]]

    @on("user")
    def do_design(pid, cid, n, request: gr.Request = None):
        out = design.design(pid, cid, caller(request), count=int(n or DEFAULT_COUNT))
        items, r = shown(out)
        return items, r, f"⏳ {say('design_started', lang_of(request), n=len(out['jobs']))}"

    @on("user")
    def do_refresh(pid, cid, request: gr.Request = None):
        if not pid or not cid:
            return [], [], ""
        out = design.candidates(pid, cid, caller(request))
        items, r = shown(out)
        lang = lang_of(request)
        states = ", ".join(f"{word(j['status'], lang)} {j['progress']:.0f}%" for j in out["jobs"])
        reference = f"`{out['reference']}`" if out["reference"] else "—"
        return items, r, f"{states + ' · ' if states else ''}{say('reference', lang)}: {reference}"

    @on("user")
    def on_select(r, evt: gr.SelectData, request: gr.Request = None):
        return r[evt.index] if r and evt.index is not None and evt.index < len(r) else None

    @on("user")
    def do_use(pid, cid, ref, request: gr.Request = None):
        if not ref:
            raise gr.Error(say("click_candidate", lang_of(request)))
        out = design.pick(pid, cid, ref, caller(request))
        return f"✅ `assets/{out['reference']}`"

    go.click(do_design, [project, who, count], [gallery, refs, info], api_visibility="private")
    check.click(do_refresh, [project, who], [gallery, refs, info], api_visibility="private")
    who.change(do_refresh, [project, who], [gallery, refs, info], api_visibility="private")
    gallery.select(on_select, refs, chosen, api_visibility="private")
    use.click(do_use, [project, who, chosen], info, api_visibility="private")

    @on("user")
    def load_who(pid, request: gr.Request = None):
        if not pid:
            return gr.update(choices=[], value=None)
        p = design.store.get(design.access.check_read(pid, caller(request)))
        ids = list(p.characters)
        return gr.update(choices=[(f"{c.name} ({cid})", cid) for cid, c in p.characters.items()],
                         value=ids[0] if ids else None)

    return load_who, who


# Every trigger that redraws the board (project change, page load, Refresh, the timer, a verb) waits in
# this one queue, one read at a time, so the last board drawn is the newest read. With a queue per
# trigger (and the studio's default of 16 at once) a read begun before a change on disk could land
# after a fresh one and put the old scenes back. A read takes milliseconds; one at a time costs nothing
# a person notices.
BOARD_QUEUE = one_at_a_time("storyboard-board")


def build(service, episodes, project, t) -> tuple:
    """The Storyboard sub-tab; returns (load function, its outputs) for the Projects tab's triggers."""
    design = DesignService(service, episodes.store)
    board = gr.HTML(elem_id="storyboard")
    action = gr.Textbox(elem_id="sb-action", show_label=False, container=False, max_lines=1)
    with gr.Row():
        scene = gr.Dropdown([], label=t("sc_pick"), scale=2, elem_id="sb-scene")
        buttons = {v: gr.Button(t(f"sb_{v}"), scale=1, size="sm", elem_id=f"sb-{v}") for v in VERBS}
        refresh = gr.Button(t("refresh"), scale=1, size="sm", elem_id="sb-refresh")
    message = gr.Markdown(elem_id="sb-message")
    timer = gr.Timer(2.0, active=False)
    with gr.Accordion(t("dz_panel"), open=False, elem_id="sb-design-panel"):
        load_who, _who = design_panel(service, design, project, "sb-design", t)

    @on("user")
    def load(pid, request: gr.Request = None):
        if not pid:
            return storyboard_html(None, lang_of(request)), gr.update(choices=[]), gr.update(active=False)
        data = sb.storyboard(episodes, pid, caller(request))
        ids = [s["id"] for s in data["scenes"]]
        return (storyboard_html(data, lang_of(request)), gr.update(choices=ids),
                gr.update(active=data["active"]))

    @on("user")
    def act(pid, value, request: gr.Request = None):
        if not pid or not value:
            return gr.update(), gr.update()
        verb, _, sid = value.split("|", 1)[0].partition(":")
        principal = caller(request)
        said = _t(lang_of(request) == "zh", VERBS.get(verb, (verb, verb)))
        if verb in ("render", "reroll"):
            if verb == "reroll":
                sb.edit(episodes.access.scoped(principal), pid, "reroll", sid)
            job = episodes.render(pid, principal, scenes=[sid], name=f"scene-{sid}"[:60], source="ui")
            return f"⏳ {said} `{sid}`: `{job.id}`", gr.update(active=True)
        chosen = sb.edit(episodes.access.scoped(principal), pid, verb, sid)
        return f"✅ {said}: `{chosen}`", gr.update(active=False)

    outs = [board, scene, timer]
    action.change(act, [project, action], [message, timer], api_visibility="private").then(
        load, project, outs, api_visibility="private", **BOARD_QUEUE)
    for verb, button in buttons.items():
        button.click(on("user")(lambda s, request=None, v=verb: f"{v}:{s}|{time.time()}" if s else ""),
                     scene, action, api_visibility="private")
    refresh.click(load, project, outs, api_visibility="private", **BOARD_QUEUE)
    timer.tick(load, project, outs, api_visibility="private", show_progress="hidden", **BOARD_QUEUE)

    @on("user")
    def both(pid, request: gr.Request = None):
        return (*load(pid, request=request), load_who(pid, request=request))

    return both, [*outs, _who]
