"""Script engines: the real OpenAI-compatible adapter against a loopback fake chat server."""

from __future__ import annotations

import json

import pytest

from core.errors import ProviderError
from engines.cloud.chat import ChatEndpoint, complete_json
from profiles.draft_model import DraftProject, reply_schema
from tests.cloud.fake_chat import API_KEY, USAGE, FakeChat
from tests.cloud.fakeserver import Fault
from tests.cloud.helpers import LOCAL, run_job

TEXT = "夜色如墨，青云山笼罩在薄雾之中。\n韩立独自站在山门前，望着远处的灯火。\n月光洒在青石板上。"
MESSAGES = [{"role": "system", "content": "Answer with one JSON object."},
            {"role": "user", "content": f"Text:\n<<<\n{TEXT}\n>>>\nAnswer with the JSON object only."}]


@pytest.fixture
def chat():
    with FakeChat() as server:
        yield server


def call(chat, structured="json_schema", **kw):
    endpoint = ChatEndpoint("FakeLLM", chat.url + "/v1", "fake-model", API_KEY, structured)
    return complete_json(endpoint, MESSAGES, DraftProject, schema=reply_schema(), **kw)


def test_a_good_reply_validates_and_counts_tokens(chat):
    reply = call(chat)
    assert [s.narration for s in reply.value.scenes] == TEXT.splitlines()
    assert reply.usage == USAGE and reply.calls == 1
    sent = chat.bodies[0]
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"title", "characters", "scenes"}
    assert chat.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize("bad", ["invalid", "violating", "length"])
def test_one_bad_reply_is_sent_back_and_repaired(chat, bad):
    chat.script(bad)
    reply = call(chat)
    assert len(reply.value.scenes) == 3 and reply.calls == 2
    assert reply.usage["total_tokens"] == 2 * USAGE["total_tokens"]
    repair = chat.bodies[1]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-1]["role"] == "user"
    assert "not accepted" in repair[-1]["content"]
    if bad == "violating":
        assert "prompt" in repair[-1]["content"] and "mood" in repair[-1]["content"]


def test_two_bad_replies_fail_clearly_in_both_languages(chat):
    chat.script("invalid", "violating")
    with pytest.raises(ProviderError) as err:
        call(chat)
    exc = err.value
    assert exc.vendor_code == "bad_reply" and not exc.retryable
    assert "twice" in exc.en and "FakeLLM" in exc.en and "两次" in exc.zh
    assert API_KEY not in exc.en + exc.zh
    assert chat.count("chat") == 2


def test_429_and_500_are_retried(chat):
    chat.inject("chat", Fault(status=429, body={"error": {"code": "rate_limit", "message": "slow down"}}),
                Fault(status=500, body={"error": {"message": "boom"}}))
    reply = call(chat)
    assert len(reply.value.scenes) == 3 and chat.count("chat") == 3


def test_a_500_that_lasts_fails_with_the_vendor_named(chat):
    chat.inject("chat", Fault(status=500, body={"error": {"message": "down"}}, times=10))
    with pytest.raises(ProviderError) as err:
        call(chat)
    assert err.value.retryable and "FakeLLM" in err.value.en and err.value.http_status == 500


def test_a_wrong_key_is_not_retried_and_not_shown(chat):
    endpoint = ChatEndpoint("FakeLLM", chat.url + "/v1", "fake-model", "sk-wrong-key-123456", "json_object")
    with pytest.raises(ProviderError) as err:
        complete_json(endpoint, MESSAGES, DraftProject, schema=reply_schema())
    assert err.value.http_status == 401 and "sk-wrong-key" not in err.value.en
    assert chat.count("chat") == 1


def test_without_structured_output_the_mode_steps_down(chat):
    chat.schema_support = False
    reply = call(chat)
    assert reply.mode == "json_object" and len(reply.value.scenes) == 3
    assert [b.get("response_format", {}).get("type") for b in chat.bodies] == ["json_object"]


def test_a_fenced_reply_is_accepted(chat):
    chat.script("fenced")
    assert call(chat, structured="none").calls == 1


# --- the engine through the job queue ---------------------------------------------------------------
@pytest.fixture
def dashscope_chat(monkeypatch):
    with FakeChat(prefix="/compatible-mode/v1") as server:
        monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)
        monkeypatch.setenv("DASHSCOPE_COMPAT_BASE_URL", server.url + "/compatible-mode/v1")
        yield server


def long_text(paragraphs: int = 12) -> str:
    return "\n".join(f"第{n}段：韩立沿着山道前行，晨雾在松林间慢慢散开，远处的钟声一下一下传来，他握紧了剑柄，"
                     f"心里想着师父临别时的嘱咐。" * 3 for n in range(1, paragraphs + 1))


def test_a_script_job_drafts_chunk_by_chunk_and_bills_tokens(cloud_studio, dashscope_chat):
    text = long_text()
    job = run_job(cloud_studio, {"engine": "dashscope-script", "params": {"text": text, "chunk_chars": 1000}})
    assert job.status == "succeeded", job.error
    calls = dashscope_chat.count("chat")
    assert calls >= 3  # ~2,000 characters in chunks of 1,000
    assert job.task == "script" and job.outputs[0]["kind"] == "text"
    draft = json.loads((cloud_studio.settings.workspace / job.outputs[0]["file"]).read_text(encoding="utf-8"))
    assert [s["narration"] for s in draft["scenes"]] == text.splitlines()
    assert job.info["usage"]["total_tokens"] == calls * USAGE["total_tokens"]
    from app.usage import ledger

    totals = {r["engine"]: r for r in ledger({"engine": "dashscope-script"})["totals"]}
    assert totals["dashscope-script"]["tokens"] == calls * USAGE["total_tokens"]
    assert API_KEY not in json.dumps(job.info) + json.dumps(job.params)
    # the later chunks were told the characters drafted so far and the part they are
    assert "part 2 of" in dashscope_chat.bodies[1]["messages"][1]["content"]


def test_a_script_job_fails_clearly_on_two_bad_replies(cloud_studio, dashscope_chat):
    dashscope_chat.script("violating", "invalid")
    job = run_job(cloud_studio, {"engine": "dashscope-script", "params": {"text": TEXT}})
    assert job.status == "failed"
    assert "twice" in job.error and "两次" in job.error_zh and job.error_code == "bad_reply"
    assert API_KEY not in (job.error or "") + (job.error_zh or "")


def test_the_prompt_box_is_the_text_and_images_are_refused(cloud_studio, dashscope_chat):
    job = run_job(cloud_studio, {"engine": "dashscope-script", "prompt": TEXT})
    assert job.status == "succeeded", job.error
    from core.errors import ValidationError

    with pytest.raises(ValidationError, match="text, not images"):
        cloud_studio.service.submit({"engine": "dashscope-script", "prompt": TEXT,
                                     "image": "https://example.com/a.png"}, LOCAL)


def test_chunks_merge_characters_once_and_scenes_in_order():
    from engines.script.base import merge

    def part(tag: str, n: int, who: str) -> dict:
        return {"title": tag, "characters": [{"id": who, "name": who.upper(), "description": "", "prompt": tag,
                                              "voice": "male"}],
                "scenes": [{"title": f"{tag}{i}", "prompt": f"{tag} {i}", "camera": "", "motion": "", "duration": 4,
                            "narration": f"{tag}{i}", "characters": [who], "lines": []} for i in range(n)]}

    merged = merge([part("a", 150, "shen"), part("b", 100, "shen"), part("c", 1, "lu")])
    assert [c["id"] for c in merged["characters"]] == ["shen", "lu"] and merged["characters"][0]["prompt"] == "a"
    assert len(merged["scenes"]) == 200 and merged["scenes"][149]["title"] == "a149"
    assert merged["scenes"][150]["title"] == "b0" and merged["title"] == "a"
