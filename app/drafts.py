"""From a chapter to a project: draft it (an LLM ``script`` job, or the offline splitter) and add
the draft to a project without overwriting anything.

``DraftService(service, access).draft(request, principal, source=...) -> dict``

``request``: ``{text, project?, after_scene?, scenes?, seconds?, engine?, title?, wait?, task_id?}``

* ``project`` empty: a new project owned by the caller (``ProjectAccess.create``), titled ``title``
  (or the draft's own title). Otherwise the caller must be able to write ``project``; the scenes go
  after ``after_scene`` (or at the end), under new ids; no scene or character already there is changed.
* Characters are added only when new: one whose name the project already has is that character.
* ``engine`` empty or ``"offline"``: ``profiles.draft.split_text``. Otherwise a script engine id (or
  ``qwen``/``glm``/``doubao``/``llm``): a ``script`` job on the queue, owned by and billed to the
  caller; this call waits for it up to ``wait`` seconds (default 600) and reads its draft file.
  When the job is still running then, the answer is ``{project: None, task_id, status}``: call again
  later with ``{task_id, project?, after_scene?}`` (no text) to add that finished draft.
* The drafted prompts suit the project's clip engine: English tags when it is SDXL, sentences for
  Wan and the cloud engines; the project's style preset goes to the LLM (and is added by the studio
  at render time, as for every scene).

Returns ``{project, scenes_added, characters_added, warnings, task_id, status}`` (ids of what was added;
``status`` is ``done``, or the script job's status while it is not finished).
"""

from __future__ import annotations

import re
import time

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticError

from profiles.draft import split_text
from profiles.draft_model import MAX_SCENES, DraftProject
from profiles.voices import DEFAULT_ENGINE

from .access import Principal
from core.errors import AppError, NotFound, ValidationError, pydantic_message

OFFLINE = "offline"
ALIASES = {"qwen": "dashscope-script", "dashscope": "dashscope-script", "glm": "zhipu-script",
           "zhipu": "zhipu-script", "doubao": "ark-script", "ark": "ark-script", "llm": "llm-script",
           "ollama": "llm-script", "openai": "llm-script"}
SLUG = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_TEXT = 40_000


class DraftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT,
                             description="The chapter or script (≤ 40,000 characters)")
    project: str | None = Field(None, pattern=SLUG, description="Draft into this project; empty: a new project")
    after_scene: str | None = Field(None, pattern=SLUG, description="Add the scenes after this one; empty: at the end")
    scenes: int | None = Field(None, ge=1, le=MAX_SCENES, description="How many scenes")
    seconds: float | None = Field(None, ge=5, le=3600, description="Episode length in seconds (instead of scenes)")
    engine: str | None = Field(None, max_length=64, description="offline (default), or a script engine id")
    title: str | None = Field(None, max_length=200, description="Title of a new project")
    wait: float = Field(600.0, ge=0, le=900, description="Seconds to wait for an LLM draft before answering")
    task_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="Add the draft of this finished "
                                "script task (instead of text)")

    @model_validator(mode="after")
    def _text_or_task(self):
        if bool(self.text) == bool(self.task_id):
            raise ValueError("give either text (to draft) or task_id (a finished script task's draft) / "
                             "请提供 text（要起草的文本）或 task_id（已完成的起草任务）之一")
        return self


def parse(request) -> DraftRequest:
    if not isinstance(request, dict):
        raise ValidationError("The draft request must be a JSON object: {text, project?, after_scene?, scenes?, "
                              "seconds?, engine?}.", "起草请求必须是 JSON 对象：{text, project?, after_scene?, "
                              "scenes?, seconds?, engine?}。")
    try:
        return DraftRequest.model_validate({k: v for k, v in request.items() if v not in (None, "")})
    except PydanticError as exc:
        raise ValidationError(*pydantic_message(exc)) from None


def prompt_flavour(config) -> str:
    """English tags when the scenes' pictures come from SDXL, sentences otherwise (Wan, cloud engines)."""
    engine = config.default_engine or config.t2v_engine or ""
    return "tags" if "sdxl" in engine else "natural"


class DraftService:
    def __init__(self, service, access):
        self.service = service
        self.access = access

    @property
    def store(self):
        return self.access.store

    # --- drafting --------------------------------------------------------------------------
    def draft(self, request, principal: Principal, *, source: str = "api", wait_s: float | None = None) -> dict:
        req = parse(request)
        wait = req.wait if wait_s is None else wait_s
        project = None
        if req.project:
            self.access.check_write(req.project, principal)
            project = self.store.get(req.project)
            if req.after_scene and req.after_scene not in {s.id for s in project.scenes}:
                raise NotFound(f"Project '{req.project}' has no scene '{req.after_scene}'.",
                               f"项目“{req.project}”中没有场景“{req.after_scene}”。")
        elif req.after_scene:
            raise ValidationError("after_scene needs a project to draft into.", "after_scene 需要同时指定项目。")
        style = project.config.style if project else "xianxia"
        flavour = prompt_flavour(project.config) if project else "natural"
        known = {c.name: cid for cid, c in project.characters.items()} if project else {}
        engine = (req.engine or OFFLINE).strip()
        engine = ALIASES.get(engine.lower(), engine)
        task_id, warnings = req.task_id, []
        if task_id:
            job = self.service.get(task_id, principal)
            if job.task != "script":
                raise ValidationError(f"Task {task_id} is not a script draft.", f"任务 {task_id} 不是剧本起草任务。")
            draft = self._finished(job, 0, warnings)
            if draft is None:
                return self._pending(job)
        elif engine == OFFLINE:
            try:
                draft, warnings = split_text(req.text, scenes=req.scenes, seconds=req.seconds, prompts=flavour,
                                             known=known, title=req.title or "")
            except (ValueError, PydanticError) as exc:
                raise ValidationError(f"The text could not be drafted: {exc}", f"无法起草该文本：{exc}") from None
        else:
            job = self._submit(req, engine, principal, source, style, flavour, known)
            task_id = job.id
            draft = self._finished(job, wait, warnings)
            if draft is None:
                return self._pending(self.service.row(job.id))
        result = self.apply(draft, principal, project=req.project, after_scene=req.after_scene,
                            title=req.title or draft.title or _title_of(req.text or ""), known=known)
        return {**result, "warnings": warnings + result.pop("warnings"), "task_id": task_id, "status": "done"}

    def _submit(self, req: DraftRequest, engine_id: str, principal, source, style, flavour, known):
        engine = self.service.engine(engine_id)
        if "script" not in engine.tasks:
            raise ValidationError(f"{engine_id} cannot draft scripts; use offline or one of: "
                                  f"{', '.join(e for e, x in self.service.engines.items() if 'script' in x.tasks)}.",
                                  f"{engine_id} 不能起草剧本；请用 offline 或剧本引擎。")
        params = {"text": req.text, "scenes": req.scenes, "seconds": req.seconds, "prompts": flavour, "style": style,
                  "characters": [{"id": cid, "name": name} for name, cid in known.items()]}
        return self.service.submit({"engine": engine_id, "params": {k: v for k, v in params.items() if v is not None},
                                    "project": req.project}, principal, source=source)

    def _finished(self, job, wait: float, warnings: list[str]) -> DraftProject | None:
        """The job's draft once it succeeded (waiting up to ``wait`` s); None while it runs."""
        deadline = time.monotonic() + wait
        while True:
            row = self.service.row(job.id)
            if row.status in ("succeeded", "failed", "cancelled") or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if row.status in ("queued", "running"):
            return None
        if row.status != "succeeded":
            raise AppError(row.error or f"The draft task was {row.status}.", row.error_zh or f"起草任务{row.status}。",
                           task_id=job.id)
        from engines.script.base import read_draft

        try:
            draft = read_draft(self.service.primary_output(row))
        except PydanticError as exc:
            raise ValidationError(*pydantic_message(exc)) from None
        dropped = (row.outputs[0].get("meta") or {}).get("dropped_scenes") or 0
        if dropped:
            warnings.append(f"The LLM drafted {dropped} scene(s) past the {MAX_SCENES}-scene limit; they were left "
                               f"out. / 大模型多起草了 {dropped} 个场景，超过 {MAX_SCENES} 个的上限，已略去。")
        return draft

    @staticmethod
    def _pending(job) -> dict:
        note = (f"The draft (task {job.id}) is still {job.status}; call again with "
                f'{{"task_id": "{job.id}"}} (and project / after_scene) once it has finished. / '
                f"起草任务 {job.id} 仍在进行，完成后请以 task_id 再次调用以加入项目。")
        return {"project": None, "scenes_added": [], "characters_added": [], "task_id": job.id, "status": job.status,
                "warnings": [note]}

    # --- adding to a project ---------------------------------------------------------------
    def apply(self, draft: DraftProject, principal: Principal, *, project: str | None, after_scene: str | None = None,
              title: str = "", known: dict | None = None) -> dict:
        warnings: list[str] = []
        if project is None:
            pid = self.store.new_id(title if re.search(r"[A-Za-z0-9]", title or "") else "draft")
            self.access.create(pid, (title or pid)[:200], principal)
        else:
            pid = self.access.check_write(project, principal)
        current = self.store.get(pid)
        if len(current.scenes) + len(draft.scenes) > MAX_SCENES:
            raise ValidationError(f"The project has {len(current.scenes)} scenes and the draft {len(draft.scenes)}; a "
                                  f"project holds at most {MAX_SCENES}. Draft fewer scenes or into a new project.",
                                  f"项目已有 {len(current.scenes)} 个场景，草稿有 {len(draft.scenes)} 个，最多 "
                                  f"{MAX_SCENES} 个。请减少场景数或起草到新项目。")
        names = {c.name: cid for cid, c in current.characters.items()} | dict(known or {})
        taken = set(current.characters)
        voice_engine = (current.config.narrator_voice.engine if current.config.narrator_voice else DEFAULT_ENGINE)
        mapping: dict[str, str] = {cid: cid for cid in current.characters}
        new_chars: dict[str, dict] = {}
        for c in draft.characters:
            if c.name in names and names[c.name] in current.characters:
                mapping[c.id] = names[c.name]
                continue
            cid, n = c.id, 2
            while cid in taken:
                cid, n = f"{c.id}-{n}", n + 1
            taken.add(cid)
            mapping[c.id] = cid
            new_chars[cid] = {"name": c.name, "description": c.description, "prompt": c.prompt,
                              **({"voice": {"engine": voice_engine, "voice": c.voice}} if c.voice != "narrator" else {})}
        if new_chars:
            def add_characters(chars: dict) -> dict:
                for cid, fields in new_chars.items():
                    chars.setdefault(cid, fields)  # never replaces one that appeared meanwhile
                return chars

            self.store.edit_characters(pid, add_characters)
        used = {s.id for s in current.scenes}
        new_scenes, n = [], 1
        for s in draft.scenes:
            while f"s{n:03d}" in used:
                n += 1
            sid = f"s{n:03d}"
            used.add(sid)
            lines = [{"character": mapping[ln.character], "text": ln.text} for ln in s.lines if ln.character in mapping]
            dropped = len(s.lines) - len(lines)
            if dropped:
                warnings.append(f"Scene {sid}: {dropped} line(s) by an unknown character were left out. / "
                                f"场景 {sid}：{dropped} 句台词的角色未知，已略去。")
            present = list(dict.fromkeys(mapping[c] for c in s.characters if c in mapping))[:8]
            new_scenes.append({"id": sid, "title": s.title, "prompt": s.prompt, "camera": s.camera, "motion": s.motion,
                               "duration": s.duration, "narration": s.narration, "characters": present, "lines": lines})

        def add_scenes(scenes: list) -> list:
            ids = [x["id"] for x in scenes]
            if any(x["id"] in ids for x in new_scenes):  # a scene added by hand meanwhile: never replaced
                raise ValidationError("The project changed while drafting; draft again.",
                                      "起草期间项目已被修改，请重新起草。")
            at = ids.index(after_scene) + 1 if after_scene in ids else len(scenes)
            return scenes[:at] + new_scenes + scenes[at:]

        self.store.edit_scenes(pid, add_scenes)
        return {"project": pid, "scenes_added": [s["id"] for s in new_scenes], "characters_added": list(new_chars),
                "warnings": warnings}


def _title_of(text: str) -> str:
    first = re.split(r"[。！？!?\n.]", text.strip(), maxsplit=1)[0]
    return first[:30] or "Draft"
