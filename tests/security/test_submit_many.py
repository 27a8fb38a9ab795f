"""``/submit_many`` under attack: keys, ``fn_index``, odd bodies, another user's job as an input,
markup in prompts, and a list far over the limit. Every refusal stores nothing."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from app.access import Principal

from .conftest import call_handler, headers, refused

WAN = {"engine": "wan2.1-t2v-1.3b", "prompt": "韩立御剑",
       "params": {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}}


def count_jobs() -> int:
    from app.db import Job, connection

    with connection():
        return Job.select().count()


def call_api(api, key: str | None, body: bytes) -> tuple[int, str]:
    """POST ``body`` to Gradio's call API for /submit_many; (status of the POST, the event stream)."""
    auth = headers(key) if key else {}
    with httpx.Client(base_url=api.base, timeout=120, headers=auth) as client:
        r = client.post("/gradio_api/call/submit_many", content=body, headers={"Content-Type": "application/json"})
        if r.status_code != 200:
            return r.status_code, r.text
        return 200, client.get(f"/gradio_api/call/submit_many/{r.json()['event_id']}").text


def body(requests) -> bytes:
    return json.dumps({"data": [requests]}, ensure_ascii=False).encode()


def test_no_key_no_batch(shared):
    before = count_jobs()
    status, text = call_api(shared, None, body([WAN, WAN]))
    assert status == 401, text
    from .conftest import handler_index

    index = handler_index(shared.app, "api", "submit_many")
    with httpx.Client(base_url=shared.base, timeout=60) as client:
        r = client.post("/gradio_api/queue/join", json={"data": [[WAN]], "fn_index": index,
                                                         "session_hash": uuid.uuid4().hex[:10]})
    assert r.status_code == 401, r.text
    assert count_jobs() == before


def test_by_fn_index_the_batch_is_the_callers_and_anothers_job_refuses_it_all(shared):
    alice, bob = Principal(user="alice"), shared.keys["bob"]
    alices = shared.studio.service.submit(WAN, alice)
    before = count_jobs()
    ok = call_handler(shared, bob, "api", "submit_many", [[WAN, {**WAN, "prompt": "第二幕"}]])
    assert ok["success"], ok
    answer = ok["output"]["data"][0]
    assert [a["status"] for a in answer] == ["queued", "queued"] and count_jobs() == before + 2
    assert {shared.job(a["task_id"]).user for a in answer} == {"bob"}
    before = count_jobs()
    stolen = {"engine": "svd-xt", "prompt": "", "image": f"job:{alices.id}", "params": {}}
    nobody = {**stolen, "image": "job:" + uuid.uuid4().hex}
    error = refused(call_handler(shared, bob, "api", "submit_many", [[WAN, stolen, WAN]]))
    same = refused(call_handler(shared, bob, "api", "submit_many", [[WAN, nobody, WAN]]))
    assert error.startswith("Request 2: ") and error.replace(alices.id, "?") == same.replace(nobody["image"][4:], "?")
    status, text = call_api(shared, bob, body([WAN, stolen]))
    assert status == 200 and "event: error" in text and "Request 2" in text, text
    assert count_jobs() == before


def test_odd_bodies_are_clear_errors_and_store_nothing(shared):
    bob, before = shared.keys["bob"], count_jobs()
    for data, words in ((WAN, "list of requests"), ("text", "list of requests"), (5, "list of requests"),
                        ([1, "x", None], "Request 1: The request must be a JSON object"),
                        ([WAN, [WAN]], "Request 2: The request must be a JSON object")):
        status, text = call_api(shared, bob, body(data))
        assert status == 200 and "event: error" in text and words in text, (data, text)
    raw = (b'{"data": [[{"engine": "wan2.1-t2v-1.3b", "prompt": "x", "params": {"width": 16, "height": 16, '
           b'"num_frames": 5, "num_inference_steps": 2, "guidance_scale": 1e400}}]]}')
    status, text = call_api(shared, bob, raw)
    assert status == 200 and "event: error" in text and "Request 1" in text and "finite" in text, text
    assert "Traceback" not in text and count_jobs() == before


def test_markup_in_a_prompt_comes_back_as_plain_data(shared):
    from gradio_client import Client

    prompt = "<script>alert('仙')</script><img src=x onerror=alert(1)>"
    client = Client(shared.base, headers=headers(shared.keys["bob"]), verbose=False)
    [answer] = client.predict([{**WAN, "prompt": prompt}], api_name="/submit_many")
    assert client.predict(answer["task_id"], api_name="/status")["prompt"] == prompt
    view = call_handler(shared, shared.keys["bob"], "queue_view", "refresh_view", ["all", answer["task_id"]])
    table = view["output"]["data"][0]
    assert "&lt;script&gt;" in table and "<script>" not in table and "<img src=x" not in table


def test_a_list_of_100000_is_refused_fast_and_stores_nothing(shared):
    bob, before = shared.keys["bob"], count_jobs()
    huge = b'{"data": [[' + b",".join([b"{}"] * 100_000) + b"]]}"
    start = time.monotonic()
    status, text = call_api(shared, bob, huge)
    took = time.monotonic() - start
    assert status == 200 and "event: error" in text and "At most 500 requests" in text, text[:300]
    assert took < 10, took  # a length check, not 100,000 validations (a loaded 2-core box)
    assert count_jobs() == before
