"""Script engines (task ``script``): a chapter in, a draft project (JSON) out, through an LLM.

The text is cut at paragraph ends into chunks (``profiles.draft.chunks``); each chunk is one chat
call (``engines.cloud.chat.complete_json``) whose reply must validate as a ``DraftProject``. The
cloud contract carries the chunks: ``start`` drafts the first, each ``poll`` drafts the next (so
cancel and progress work between calls, and a restart resumes at the chunk it was on: the drafted
chunks are kept in the engine's create journal), and ``collect`` merges them into one draft file.

A subclass says where to send the calls: ``endpoint(params) -> ChatEndpoint``.

Merging: characters are collected once by id (a later chunk sees the earlier ones as known and
reuses their ids); scenes keep their order. The job's ``info.usage`` sums the tokens of every call.
"""

from __future__ import annotations

import json
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from core.errors import ProviderError, ValidationError
from core.media import atomic_write_json
from engines.base import (
    CloudEngine,
    EngineRequest,
    Output,
    Params,
    RemoteState,
    output_name,
)
from engines.cloud.chat import USAGE_KEYS, ChatEndpoint, complete_json
from engines.cloud.journal import CreateJournal
from profiles.draft import chunks
from profiles.draft_model import MAX_SCENES, DraftProject, reply_schema
from profiles.styles import STYLES

from . import prompt as brief

MAX_TEXT = 40_000


class KnownCharacter(Params):
    id: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    name: str = Field(..., min_length=1, max_length=100)


class ScriptParams(Params):
    text: str = Field(..., min_length=1, description="The chapter or script to draft from (up to 40,000 characters)")
    scenes: int | None = Field(None, ge=1, le=MAX_SCENES, description="How many scenes (empty: as the text needs)")
    seconds: float | None = Field(None, ge=5, le=3600, description="Episode length in seconds (instead of scenes)")
    prompts: Literal["natural", "tags"] = Field("natural", description="natural: sentences (Wan, cloud engines); "
                                                "tags: English tags (SDXL)")
    style: Literal[tuple(STYLES)] = Field("none", description="The project's style preset")  # type: ignore[valid-type]
    characters: list[KnownCharacter] = Field(default_factory=list, max_length=100,
                                             description="Characters the project already has (their ids are reused)")
    model: str = Field("", max_length=100, pattern=r"^[A-Za-z0-9._:/@-]*$",
                       description="The vendor's model id; empty: the engine's default")
    temperature: float = Field(0.7, ge=0.0, le=1.5, description="Higher: freer writing")
    chunk_chars: int = Field(6000, ge=1000, le=30000, description="Characters of text per call")

    @field_validator("text")
    @classmethod
    def _fits(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("paste the chapter to draft from (the text is empty) / 请粘贴要起草的文本")
        if len(text) > MAX_TEXT:
            raise ValueError(f"the text has {len(text)} characters; at most {MAX_TEXT} can be drafted at once: split it "
                             f"/ 文本共 {len(text)} 字，一次最多 {MAX_TEXT} 字，请分段起草")
        return text


class ScriptEngine(CloudEngine):
    tasks: ClassVar[tuple[str, ...]] = ("script",)
    Params = ScriptParams
    can_cancel = False
    DEFAULT_MODEL: ClassVar[str] = ""

    def __init__(self, settings, secrets=None):
        super().__init__(settings, secrets)
        if not hasattr(self, "journal"):
            self.journal = CreateJournal(settings.workspace, self.id)
            self.journal.sweep()

    def endpoint(self, params: ScriptParams) -> ChatEndpoint:
        raise NotImplementedError

    # --- one chunk -------------------------------------------------------------------------
    def _parts(self, p: ScriptParams) -> list[str]:
        return chunks(p.text, p.chunk_chars)

    def _draft_next(self, request: EngineRequest) -> dict:
        p: ScriptParams = request.params
        note = self.journal.load(request.job_id)
        parts = self._parts(p)
        done: list[dict] = list(note.get("drafts") or [])
        if len(done) >= len(parts):
            return note
        index = len(done)
        known = [c.model_dump() for c in p.characters]
        known += [{"id": c["id"], "name": c["name"]} for d in done for c in d.get("characters", [])]
        shares = brief.scene_share(p, parts)
        endpoint = self.endpoint(p)
        reply = complete_json(endpoint, brief.messages(p, parts[index], index, len(parts), shares[index], known),
                              DraftProject, schema=reply_schema(), context={"known": {c["id"] for c in known}},
                              temperature=p.temperature)
        usage = dict(note.get("usage") or {k: 0 for k in USAGE_KEYS})
        for k in USAGE_KEYS:
            usage[k] = usage.get(k, 0) + reply.usage.get(k, 0)
        done.append(reply.value.model_dump(mode="json"))
        return self.journal.save(request.job_id, remote_id=note.get("remote_id") or f"script-{request.job_id}",
                                 drafts=done, parts=len(parts), usage=usage, model=endpoint.model,
                                 calls=int(note.get("calls") or 0) + reply.calls, mode=reply.mode,
                                 request_id=reply.request_id)

    # --- the cloud contract ----------------------------------------------------------------
    def start(self, request: EngineRequest) -> str:
        note = self.journal.load(request.job_id)
        if note.get("remote_id"):
            return note["remote_id"]  # drafted before a restart: go on from there
        self.journal.root.mkdir(parents=True, exist_ok=True)
        return self._draft_next(request)["remote_id"]

    def poll(self, remote_id: str, request: EngineRequest) -> RemoteState:
        note = self.journal.load(request.job_id)
        if not note.get("drafts") or len(note["drafts"]) < int(note.get("parts") or 1):
            note = self._draft_next(request)
        parts, done = int(note.get("parts") or 1), len(note.get("drafts") or [])
        info = {"usage": note.get("usage") or {}, "model": note.get("model"), "chunks": parts, "calls": note.get("calls")}
        if done < parts:
            return RemoteState("running", f"drafted {done}/{parts}", progress=100.0 * done / parts, info=info)
        return RemoteState("succeeded", "drafted", progress=100.0, info=info)

    def collect(self, state: RemoteState, request: EngineRequest) -> list[Output]:
        note = self.journal.load(request.job_id)
        drafts = note.get("drafts") or []
        if not drafts:
            raise ProviderError("The drafted parts are gone from the studio's cloud folder; retry the job.",
                                "已起草的内容已从工作室的云端缓存中丢失，请重试该任务。", retryable=False,
                                vendor_code="lost")
        merged = merge(drafts)
        drafted = sum(len(d.get("scenes", [])) for d in drafts)
        path = request.workdir / output_name(self.id, 0, "json")
        atomic_write_json(path, merged)
        self.journal.clear(request.job_id)
        return [Output(path=path, kind="text", meta={"scenes": len(merged["scenes"]),
                                                     "characters": len(merged["characters"]),
                                                     "dropped_scenes": drafted - len(merged["scenes"]),
                                                     "model": note.get("model")})]

    def poll_delay(self, polls: int) -> float:
        return 0.0


def merge(drafts: list[dict]) -> dict:
    """One draft of several chunks' drafts: characters once by id, scenes in order (at most 200)."""
    characters: dict[str, dict] = {}
    scenes: list[dict] = []
    for d in drafts:
        for c in d.get("characters", []):
            characters.setdefault(c["id"], c)
        scenes.extend(d.get("scenes", []))
    title = next((d.get("title") for d in drafts if d.get("title")), "")
    if len(scenes) > MAX_SCENES:
        scenes = scenes[:MAX_SCENES]
    merged = {"title": title, "characters": list(characters.values()), "scenes": scenes}
    return DraftProject.model_validate(merged, context={"known": {s for sc in scenes for s in sc.get("characters", [])}
                                                        | {ln["character"] for sc in scenes for ln in sc.get("lines", [])}}
                                       ).model_dump(mode="json")


def read_draft(path) -> DraftProject:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError("The draft file cannot be read.", "无法读取草稿文件。") from exc
    return DraftProject.model_validate(data, context={"known": {c for s in data.get("scenes", [])
                                                                for c in s.get("characters", [])}
                                                      | {ln["character"] for s in data.get("scenes", [])
                                                         for ln in s.get("lines", [])}})
