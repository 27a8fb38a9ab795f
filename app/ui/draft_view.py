"""Projects → 起草 / Draft: paste a chapter (or load a .txt/.md), draft it into a new project or after
a scene of the open one, offline or with an LLM script engine.

Named endpoint for scripts (``gradio_client``):

    /draft_project (request) -> {project, scenes_added, characters_added, warnings, task_id, status}
        request: {text, project?, after_scene?, scenes?, seconds?, engine?, title?, wait?}
                 or {task_id, project?, after_scene?}: add a finished script task's draft
        engine: "offline" (default) | dashscope-script | zhipu-script | ark-script | llm-script
        An LLM draft not finished within ``wait`` s (default 600) answers {project: None, task_id, status}.
"""

from __future__ import annotations

import gradio as gr

from app.access import caller
from app.drafts import MAX_TEXT, OFFLINE, DraftService

from .api import on

MAX_FILE_BYTES = 4 * MAX_TEXT  # UTF-8: at most 4 bytes a character


def register(drafts: DraftService) -> None:
    @on("user")
    def draft_project(request_body: dict, request: gr.Request = None) -> dict:
        return drafts.draft(request_body, caller(request), source="api")

    gr.api(draft_project, api_name="draft_project", concurrency_limit=None)


def build(service, projects, project, t) -> None:
    """The Draft sub-tab; ``project`` is the Projects tab's project dropdown (set to the result)."""
    drafts = DraftService(service, projects)
    engines = [(OFFLINE + "（离线规则 / rule-based）", OFFLINE)] + [
        (f"{e.title} ({eid})", eid) for eid, e in sorted(service.engines.items()) if "script" in e.tasks]
    with gr.Row():
        text = gr.Textbox(label="章节或剧本 / Chapter or script", lines=12, max_length=MAX_TEXT, scale=4,
                          placeholder="粘贴一章小说或一页剧本… / Paste a chapter or a page of script…",
                          elem_id="draft-text")
        with gr.Column(scale=2):
            upload = gr.File(label=".txt / .md", file_types=[".txt", ".md"], type="filepath")
            engine = gr.Dropdown(engines, value=OFFLINE, label="起草引擎 / Drafting engine", elem_id="draft-engine")
            with gr.Row():
                scenes = gr.Number(label="场景数 / Scenes", precision=0, minimum=0, maximum=200)
                seconds = gr.Number(label="时长（秒）/ Seconds", minimum=0, maximum=3600)
            into = gr.Checkbox(label="加入当前项目 / Into the open project", value=False)
            after = gr.Textbox(label="插在此场景之后（空 = 末尾）/ After scene (empty = end)", max_lines=1)
            title = gr.Textbox(label="新项目标题 / New project title", max_lines=1)
            go = gr.Button("起草 / Draft", variant="primary", elem_id="draft-go")
    result = gr.JSON(label="结果 / Result", elem_id="draft-result")

    @on("user")
    def load_file(path, request: gr.Request = None):
        if not path:
            return gr.update()
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise gr.Error(f"The file is too long: at most {MAX_TEXT} characters. / 文件过长，最多 {MAX_TEXT} 字。")
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return data.decode(encoding)[:MAX_TEXT]
            except UnicodeDecodeError:
                continue
        raise gr.Error("The file is not UTF-8 or GB18030 text. / 文件不是 UTF-8 或 GB18030 文本。")

    @on("user")
    def do_draft(text_v, engine_v, scenes_v, seconds_v, into_v, after_v, title_v, pid, request: gr.Request = None):
        principal = caller(request)
        body = {"text": text_v or "", "engine": engine_v or OFFLINE, "scenes": int(scenes_v) if scenes_v else None,
                "seconds": float(seconds_v) if seconds_v else None, "title": (title_v or "").strip() or None}
        if into_v:
            if not pid:
                raise gr.Error("Open a project first, or untick 'Into the open project'. / 请先打开项目。")
            body.update(project=pid, after_scene=(after_v or "").strip() or None)
        out = drafts.draft(body, principal, source="ui")
        from .projects_view import project_choices

        if not out["project"]:  # an LLM still drafting: the result names its task
            return out, gr.update()
        return out, gr.update(choices=project_choices(projects, principal), value=out["project"])

    upload.upload(load_file, upload, text, api_visibility="private")
    go.click(do_draft, [text, engine, scenes, seconds, into, after, title, project], [result, project],
             api_visibility="private")
    register(drafts)
