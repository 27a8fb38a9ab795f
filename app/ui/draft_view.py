"""Projects → Draft (起草): paste a chapter (or load a .txt/.md), draft it into a new project or after
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
from .i18n import lang_of
from .project_texts import say

MAX_FILE_BYTES = 4 * MAX_TEXT  # UTF-8: at most 4 bytes a character


def one_language(text: str, lang: str) -> str:
    """One half of a bilingual "English. / 中文。" message (the text as it is when it has no such halves)."""
    en, sep, zh = text.rpartition(" / ")
    if not sep or not en.strip() or not zh.strip():
        return text
    return zh if lang == "zh" else en


def register(drafts: DraftService) -> None:
    @on("user")
    def draft_project(request_body: dict, request: gr.Request = None) -> dict:
        return drafts.draft(request_body, caller(request), source="api")

    gr.api(draft_project, api_name="draft_project", concurrency_limit=None)


def build(service, projects, project, t) -> None:
    """The Draft sub-tab; ``project`` is the Projects tab's project dropdown (set to the result)."""
    drafts = DraftService(service, projects)
    from .param_texts import engine_choices

    scripts = [e for e in service.engines_info() if "script" in e["tasks"]]
    engines = [(t("dr_offline"), OFFLINE)] + engine_choices(scripts, t)  # the engines' titles, in both languages
    with gr.Row():
        text = gr.Textbox(label=t("dr_text"), lines=12, max_length=MAX_TEXT, scale=4, placeholder=t("dr_text_ph"),
                          elem_id="draft-text")
        with gr.Column(scale=2):
            upload = gr.File(label=".txt / .md", file_types=[".txt", ".md"], type="filepath")
            engine = gr.Dropdown(engines, value=OFFLINE, label=t("dr_engine"), elem_id="draft-engine")
            with gr.Row():
                scenes = gr.Number(label=t("dr_scenes"), precision=0, minimum=0, maximum=200)
                seconds = gr.Number(label=t("dr_seconds"), minimum=0, maximum=3600)
            into = gr.Checkbox(label=t("dr_into"), value=False, elem_id="draft-into")
            after = gr.Textbox(label=t("dr_after"), max_lines=1)
            title = gr.Textbox(label=t("dr_title"), max_lines=1)
            go = gr.Button(t("dr_go"), variant="primary", elem_id="draft-go")
    result = gr.JSON(label=t("dr_result"), elem_id="draft-result")

    @on("user")
    def load_file(path, request: gr.Request = None):
        if not path:
            return gr.update()
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise gr.Error(say("file_too_long", lang_of(request), n=MAX_TEXT))
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return data.decode(encoding)[:MAX_TEXT]
            except UnicodeDecodeError:
                continue
        raise gr.Error(say("file_not_text", lang_of(request)))

    @on("user")
    def do_draft(text_v, engine_v, scenes_v, seconds_v, into_v, after_v, title_v, pid, request: gr.Request = None):
        principal = caller(request)
        body = {"text": text_v or "", "engine": engine_v or OFFLINE, "scenes": int(scenes_v) if scenes_v else None,
                "seconds": float(seconds_v) if seconds_v else None, "title": (title_v or "").strip() or None}
        if into_v:
            if not pid:
                raise gr.Error(say("open_project_first", lang_of(request)))
            body.update(project=pid, after_scene=(after_v or "").strip() or None)
        out = drafts.draft(body, principal, source="ui")
        from .projects_view import project_choices

        lang = lang_of(request)  # the API's warnings are "English / 中文": the page shows one of the two
        shown = {**out, "warnings": [one_language(w, lang) for w in out.get("warnings") or []]}
        if not out["project"]:  # an LLM still drafting: the result names its task
            return shown, gr.update()
        return shown, gr.update(choices=project_choices(projects, principal), value=out["project"])

    upload.upload(load_file, upload, text, api_visibility="private")
    go.click(do_draft, [text, engine, scenes, seconds, into, after, title, project], [result, project],
             api_visibility="private")
    register(drafts)
