"""A loopback fake of an OpenAI-compatible chat server (DashScope compatible mode, Zhipu, Ark,
Ollama, vLLM all speak it), for the script engines.

``POST <prefix>/chat/completions``: the Bearer key is checked (when ``api_key`` is set);
``model`` and ``messages`` are required; ``response_format`` is checked the way the vendors do it:
``json_schema`` needs ``json_schema.name`` and ``json_schema.schema`` (refused with 400 naming
``response_format`` when ``schema_support`` is off), ``json_object`` needs the word "json" in
the messages (DashScope's rule). Answers are ``chat.completion`` objects with ``usage``.

What it answers, in order: the scripted ``replies`` first (``script(...)``), then a default draft
made from the text between ``<<<`` and ``>>>`` in the last user message (one scene per paragraph).
A scripted reply is one of:

``{"draft": {...}}``    that object as the JSON content
``"invalid"``           content that is not JSON
``"violating"``         JSON that breaks the schema (a scene without a prompt, an unknown field)
``"fenced"``            the default draft inside a ```json fence
``"length"``            the default draft cut in half, ``finish_reason: length``

HTTP faults (429, 500, dropped connections) go through ``inject("chat", Fault(...))``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid

from tests.cloud.fakeserver import FakeServer, Reply, Req

API_KEY = "sk-fake-chat-0001"
USAGE = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}


def draft_of(text: str) -> dict:
    paras = [p.strip() for p in text.splitlines() if p.strip()] or ["空"]
    scenes = [{"title": f"{n}", "prompt": f"scene {n}, moonlit courtyard, medium shot", "camera": "medium shot",
               "motion": "", "duration": 5, "narration": p[:2000], "characters": [], "lines": []}
              for n, p in enumerate(paras, 1)]
    return {"title": "Fake draft", "characters": [], "scenes": scenes}


class FakeChat(FakeServer):
    def __init__(self, prefix: str = "/v1", api_key: str | None = API_KEY):
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.api_key = api_key
        self.schema_support = True
        self.replies: list = []
        self.bodies: list[dict] = []  # every accepted request body
        self._script_lock = threading.Lock()

    def script(self, *replies) -> None:
        with self._script_lock:
            self.replies.extend(replies)

    def route(self, req: Req) -> str:
        if req.method == "POST" and req.path == f"{self.prefix}/chat/completions":
            return "chat"
        return super().route(req)

    @staticmethod
    def error(status: int, code: str, message: str) -> Reply:
        return Reply(status, {"error": {"code": code, "message": message, "type": "invalid_request_error"}})

    def handle(self, req: Req, route: str) -> Reply:
        if route != "chat":
            return Reply(404, {"error": {"message": "not found"}})
        if self.api_key and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(401, "invalid_api_key", "Incorrect API key provided.")
        body = req.json()
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return self.error(400, "invalid_parameter", "model and messages are required")
        fmt = body.get("response_format")
        if isinstance(fmt, dict):
            if fmt.get("type") == "json_schema":
                if not self.schema_support:
                    return self.error(400, "invalid_parameter",
                                      "response_format.type json_schema is not supported by this model")
                spec = fmt.get("json_schema") or {}
                if not spec.get("name") or not isinstance(spec.get("schema"), dict):
                    return self.error(400, "invalid_parameter", "response_format.json_schema needs name and schema")
            elif fmt.get("type") == "json_object" and "json" not in json.dumps(body["messages"],
                                                                                ensure_ascii=False).lower():
                return self.error(400, "invalid_parameter", "'messages' must contain the word 'json' in some "
                                  "form, to use 'response_format' of type 'json_object'.")
        self.bodies.append(body)
        user = next((m.get("content", "") for m in reversed(body["messages"]) if m.get("role") == "user"), "")
        first_user = next((m.get("content", "") for m in body["messages"] if m.get("role") == "user"), "")
        found = re.search(r"<<<\n(.*?)\n>>>", first_user, re.DOTALL)
        default = draft_of(found.group(1) if found else user)
        with self._script_lock:
            scripted = self.replies.pop(0) if self.replies else None
        finish = "stop"
        if scripted is None:
            content = json.dumps(default, ensure_ascii=False)
        elif isinstance(scripted, dict):
            content = json.dumps(scripted["draft"], ensure_ascii=False)
        elif scripted == "invalid":
            content = "Sure! Here is your storyboard: scenes 1-3 in a moonlit courtyard..."
        elif scripted == "violating":
            bad = json.loads(json.dumps(default))
            bad["scenes"][0].pop("prompt")
            bad["scenes"][0]["mood"] = "tense"
            content = json.dumps(bad, ensure_ascii=False)
        elif scripted == "fenced":
            content = "```json\n" + json.dumps(default, ensure_ascii=False) + "\n```"
        elif scripted == "length":
            full = json.dumps(default, ensure_ascii=False)
            content, finish = full[: len(full) // 2], "length"
        else:
            raise AssertionError(f"unknown scripted reply {scripted!r}")
        return Reply(200, {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                           "model": body["model"], "created": 1700000000,
                           "choices": [{"index": 0, "finish_reason": finish,
                                        "message": {"role": "assistant", "content": content}}],
                           "usage": dict(USAGE)})
