"""The cloud loop's HTTP (engines/cloud/aio.py on aiohttp) against a loopback server: the bytes on the
wire are httpx's, answers come back as ``httpx.Response``, and each failure maps to the httpx error
that tells a create "never sent" from "maybe sent" (``http.transport_error``)."""

from __future__ import annotations

import gzip
import json
import socket

import httpx
import pytest

from core.errors import ProviderError
from engines.cloud import aio, http, steps
from tests.cloud.fakeserver import FakeServer, Fault, Reply


class Echo(FakeServer):
    """Answers every API call with what it received; ``/gz`` answers gzip-encoded JSON."""

    def route(self, req):
        return "download" if req.path.startswith("/files/") else "api"

    def handle(self, req, route):
        if req.path == "/gz":
            return Reply(200, gzip.compress(b'{"task_status": "RUNNING", "note": "\xe4\xbb\x99"}'),
                         {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        return Reply(200, {"path": req.path, "query": req.query, "body": req.body.decode("utf-8"),
                           "content_type": req.headers.get("content-type")})


@pytest.fixture(scope="module", autouse=True)
def _loop_closed_after():
    yield
    aio.shutdown()  # the session and its connections, as a studio's stop closes them


@pytest.fixture
def server():
    with Echo() as s:
        yield s


def run(coro):
    return aio.submit(coro).result(30)


def quick(read: float = 0.5) -> httpx.Timeout:
    return httpx.Timeout(connect=2.0, read=read, write=2.0, pool=2.0)


def test_a_json_body_goes_out_as_httpx_would_send_it(server):
    body = {"model": "wan2.6-t2v", "input": {"prompt": "剑仙御剑穿过云海 <b>"}}
    answer = run(aio.send_json("POST", f"{server.url}/api/v1/tasks", vendor="Test", json=body,
                               headers={"Authorization": "Bearer sk-test"}))
    sent = answer["body"].encode("utf-8")
    assert sent == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert answer["content_type"] == "application/json"
    assert server.requests[-1].headers["user-agent"] == http.USER_AGENT


def test_a_signed_query_arrives_unchanged_and_params_are_added(server):
    url = f"{server.url}/files/x.mp4?Expires=1796650286&Signature=a%2Bb%2F%3D"
    run(aio.request("GET", url.replace("/files/", "/api/")))
    assert server.requests[-1].query == {"Expires": "1796650286", "Signature": "a+b/="}
    answer = run(aio.send_json("GET", f"{server.url}/tasks", vendor="Test", params={"start_time": "2026-12-07 10:00:00"}))
    assert answer["query"] == {"start_time": "2026-12-07 10:00:00"}


def test_a_compressed_answer_is_decoded(server):
    assert run(aio.send_json("GET", f"{server.url}/gz", vendor="Test")) == {"task_status": "RUNNING", "note": "仙"}


def test_nan_in_a_body_is_refused_before_anything_is_sent(server):
    with pytest.raises(ValueError):
        run(aio.request("POST", f"{server.url}/x", json={"duration": float("nan")}))
    assert server.requests == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_means_never_sent_even_for_a_create():
    with pytest.raises(ProviderError) as caught:
        run(aio.send_json("POST", f"http://127.0.0.1:{closed_port()}/create", vendor="Test", json={},
                          idempotent=False, timeout=quick()))
    assert caught.value.vendor_code == "connection" and caught.value.retryable  # safe to send again


@pytest.mark.parametrize("fault", [Fault(drop=True), Fault(late=2.0), Fault(truncate=True)], ids=["drop", "late", "cut"])
def test_a_create_whose_answer_was_lost_may_have_happened(server, fault):
    server.inject("api", fault)
    with pytest.raises(ProviderError) as caught:
        run(aio.send_json("POST", f"{server.url}/create", vendor="Test", json={"prompt": "x"}, idempotent=False,
                          timeout=quick()))
    assert caught.value.vendor_code == "uncertain_create" and not caught.value.retryable
    assert server.count("api") == 1  # and it was not sent again


def test_a_poll_that_times_out_is_retryable_and_says_so(server):
    server.inject("api", Fault(late=2.0))
    with pytest.raises(ProviderError) as caught:
        run(aio.send_json("GET", f"{server.url}/tasks/1", vendor="Test", timeout=quick()))
    assert caught.value.vendor_code == "timeout" and caught.value.retryable


def test_mapped_errors_never_carry_the_url_or_its_signature(server):
    secret = "Signature=s3cr3t-signature"
    with pytest.raises(httpx.HTTPError) as caught:
        run(aio.request("GET", f"http://127.0.0.1:{closed_port()}/files/x.mp4?{secret}", timeout=quick()))
    assert isinstance(caught.value, httpx.ConnectError)
    assert "s3cr3t" not in str(caught.value) and caught.value.__cause__ is None


def test_a_download_streams_counts_and_notices_a_cut(server, tmp_path):
    data = b"\x00\x00\x00\x18ftypisom" + bytes(200_000)
    url = server.publish(data, "clip.mp4")

    async def fetch() -> tuple[int, str | None, int, bytes]:
        async with aio.stream(url) as response:
            got = b"".join([chunk async for chunk in response.aiter_bytes(1 << 14)])
            return response.status_code, response.headers.get("content-length"), response.num_bytes_downloaded, got

    status, length, count, got = run(fetch())
    assert (status, length, count, got) == (200, str(len(data)), len(data), data)
    assert server.requests[-1].headers["accept-encoding"] == "identity"  # the stored bytes, so the length holds
    server.inject("download", Fault(truncate=True))
    with pytest.raises(ProviderError) as caught:
        run(steps.arun(http.result_steps(url, tmp_path, "dashscope", 0, attempts=1)))
    assert caught.value.vendor_code in ("download", "truncated")
    assert list(tmp_path.iterdir()) == []  # no half-written file left behind


@pytest.mark.parametrize("in_memory", [1 << 20, 1000])
def test_a_download_lands_whole_whether_held_in_memory_or_spilled_to_its_file(server, tmp_path, monkeypatch,
                                                                              in_memory):
    """Up to ``IN_MEMORY_BYTES`` the body is written (and synced) off the loop in one go; above it, the
    rest streams into the temp file opened off the loop. Either way: the same bytes, one final file."""
    monkeypatch.setattr(http, "IN_MEMORY_BYTES", in_memory)
    data = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 800
    url = server.publish(data, "clip.mp4")
    final = run(steps.arun(http.result_steps(url, tmp_path, "dashscope", 0, attempts=1), on=aio.files))
    assert final.read_bytes() == data and final.suffix == ".mp4"
    assert [p.name for p in tmp_path.iterdir()] == [final.name]  # no temp file left beside it


def test_a_cut_download_spilled_to_its_file_leaves_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setattr(http, "IN_MEMORY_BYTES", 1000)
    url = server.publish(b"\x00\x00\x00\x18ftypisom" + bytes(200_000), "clip.mp4")
    server.inject("download", Fault(truncate=True))
    with pytest.raises(ProviderError):
        run(steps.arun(http.result_steps(url, tmp_path, "dashscope", 0, attempts=1), on=aio.files))
    assert list(tmp_path.iterdir()) == []


def test_the_proxy_variables_are_honoured_as_by_the_blocking_client(server, monkeypatch):
    """HTTP_PROXY (with its credentials) for a vendor's host, NO_PROXY for loopback: read once per host."""
    host, port = server.url.removeprefix("http://").split(":")
    monkeypatch.setenv("HTTP_PROXY", f"http://user:pa55@{host}:{port}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    monkeypatch.setattr(aio, "_proxies", {})
    answer = run(aio.send_json("GET", "http://vendor.invalid/api/v1/tasks/7", vendor="Test"))
    seen = server.requests[-1]
    assert answer["path"].endswith("/api/v1/tasks/7") and seen.headers["host"] == "vendor.invalid"
    assert seen.headers["proxy-authorization"] == "Basic dXNlcjpwYTU1"  # user:pa55
    monkeypatch.setenv("NO_PROXY", "vendor.invalid")
    monkeypatch.setattr(aio, "_proxies", {})
    with pytest.raises(ProviderError) as caught:  # not through the proxy: the name does not resolve
        run(aio.send_json("GET", "http://vendor.invalid/api/v1/tasks/7", vendor="Test", timeout=quick()))
    assert caught.value.vendor_code == "connection"
