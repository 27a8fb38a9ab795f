"""One OpenAI-compatible chat call whose answer must be JSON that a pydantic model accepts.

``POST {base}/chat/completions`` with ``{model, messages, response_format, temperature, ...}``,
``Authorization: Bearer <key>`` (left out when the endpoint has no key: a local Ollama). The
answer's ``choices[0].message.content`` is parsed (a fenced ```json block is tolerated) and
validated with the caller's model. Spoken by DashScope compatible mode, Zhipu ``/api/paas/v4``,
Ark ``/api/v3``, OpenAI, Ollama, LM Studio and vLLM.

``ChatEndpoint(vendor, base_url, model, key=None, structured="json_schema"|"json_object"|"none", extra={})``
``complete_json(endpoint, messages, model_cls, *, schema, context=None, max_tokens=None) -> ChatReply``

* HTTP 429 / 5xx / timeouts are retried (``http.with_retries``, tenacity).
* A 400 that names ``response_format`` (a model without structured output) is sent again once
  with the next weaker mode: json_schema → json_object → none (the prompt asks for JSON anyway).
* A reply that is not JSON, or that the model refuses, is sent back once with the error and a
  request to answer again; a second bad reply raises ``ProviderError(vendor_code="bad_reply")``.
* ``ChatReply.usage`` sums ``prompt_tokens`` / ``completion_tokens`` / ``total_tokens`` over every
  call made (a repaired reply costs twice).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from core.errors import ProviderError
from engines.cloud import http

MODES = ("json_schema", "json_object", "none")
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


@dataclass(frozen=True)
class ChatEndpoint:
    vendor: str
    base_url: str
    model: str
    key: str | None = None
    structured: str = "json_object"
    extra: dict = field(default_factory=dict)  # vendor fields sent as they are (thinking: disabled...)


@dataclass
class ChatReply:
    value: Any  # the validated model instance
    raw: str
    usage: dict
    calls: int
    request_id: str | None
    mode: str


def error_of(vendor: str, key: str | None):
    def mapped(response: httpx.Response) -> ProviderError:
        body = http.error_body(response)
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        code = err.get("code") or err.get("type")
        message = http.scrub(str(err.get("message") or "")[:300], key) or None
        return http.http_error(vendor, response.status_code, str(code) if code else None, message,
                               retry_after=http.retry_after_of(response))

    return mapped


def response_format(mode: str, schema: dict, name: str) -> dict | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def parse_content(content: str) -> Any:
    """The JSON value in a reply: the whole text, or the inside of a ```json fence."""
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced and not text.startswith(("{", "[")):
        text = fenced.group(1).strip()
    return json.loads(text)


def _problem(exc: Exception) -> str:
    if isinstance(exc, PydanticError):
        parts = []
        for err in exc.errors()[:12]:
            loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return "; ".join(parts)
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    return str(exc)


def _send(endpoint: ChatEndpoint, body: dict, timeout: float) -> dict:
    headers = {"Content-Type": "application/json"}
    if endpoint.key:
        headers["Authorization"] = f"Bearer {endpoint.key}"
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    return http.with_retries(lambda: http.send_json(
        "POST", url, vendor=endpoint.vendor, headers=headers, json=body, error_of=error_of(endpoint.vendor, endpoint.key),
        timeout=http.timeouts(read=timeout)), what=f"{endpoint.vendor} chat")


def complete_json(endpoint: ChatEndpoint, messages: list[dict], model_cls: type[BaseModel], *, schema: dict,
                  context: dict | None = None, max_tokens: int | None = None, temperature: float = 0.7,
                  timeout: float = 300.0, name: str = "draft_project") -> ChatReply:
    messages = list(messages)
    mode = endpoint.structured if endpoint.structured in MODES else "json_object"
    usage = {k: 0 for k in USAGE_KEYS}
    calls = bad = 0
    request_id = None
    while True:
        body = {"model": endpoint.model, "messages": messages, "temperature": temperature, "stream": False,
                **endpoint.extra}
        fmt = response_format(mode, schema, name)
        if fmt:
            body["response_format"] = fmt
        if max_tokens:
            body["max_tokens"] = max_tokens
        try:
            answer = _send(endpoint, body, timeout)
        except ProviderError as exc:
            said = exc.en.lower()
            if exc.http_status == 400 and mode != "none" and any(w in said for w in ("response_format", "json_schema",
                                                                                      "json_object")):
                mode = MODES[MODES.index(mode) + 1]  # this model has no such structured output: weaker mode
                continue
            raise
        calls += 1
        for k in USAGE_KEYS:
            value = (answer.get("usage") or {}).get(k) if isinstance(answer.get("usage"), dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                usage[k] += int(value)
        request_id = str(answer.get("id") or answer.get("request_id") or "") or request_id
        content, finish = _content(answer)
        try:
            if finish == "length":
                raise ValueError("the reply was cut off at the token limit; answer with fewer, shorter scenes")
            value = model_cls.model_validate(parse_content(content), context=context)
            return ChatReply(value, content, usage, calls, request_id, mode)
        except (ValueError, PydanticError) as exc:  # JSONDecodeError and pydantic's are ValueErrors
            bad += 1
            problem = _problem(exc)
            if bad >= 2:
                raise ProviderError(
                    f"{endpoint.vendor} ({endpoint.model}) twice answered with a draft the studio cannot use: "
                    f"{problem[:400]}. Try again, choose another model, or draft offline.",
                    f"{endpoint.vendor}（{endpoint.model}）两次返回了无法使用的草稿：{problem[:400]}。"
                    "请重试、换用其他模型，或使用离线起草。", retryable=False, vendor_code="bad_reply") from None
            messages = [*messages, {"role": "assistant", "content": content[:20000]},
                        {"role": "user", "content": "Your JSON was not accepted: " + problem[:2000]
                         + ". Answer again with the whole corrected JSON object only, following the schema. / "
                         "上面的 JSON 未通过校验，请按要求改正后只返回完整的 JSON 对象。"}]


def _content(answer: dict) -> tuple[str, str | None]:
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", None
    message = choices[0].get("message") if isinstance(choices[0].get("message"), dict) else {}
    content = message.get("content")
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return (content if isinstance(content, str) else ""), choices[0].get("finish_reason")
