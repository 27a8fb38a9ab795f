"""A shared studio under attack: keys required everywhere, one admin and two users (alice, bob),
served by a real uvicorn so UI event handlers can be called the way an attacker would, by
``fn_index`` through Gradio's queue."""

from __future__ import annotations

import inspect
import json
import struct
import uuid
import zlib

import httpx
import pytest

from tests.api.conftest import clean_env, make_api, serve, tiny_sdxl_dir  # noqa: F401 (fixtures)

USERS = {"root": True, "alice": False, "bob": False, "erin": False}


@pytest.fixture
def shared(make_api):  # noqa: F811
    api = make_api(rest={"auth": "required"}, users={"erin": {"quotas": {"videos_per_day": 2}}},
                   keys=USERS, start=True)
    with serve(api.app) as base:
        api.base = base
        yield api


def headers(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def handler_index(app, module: str, name: str) -> int:
    """The ``fn_index`` of the UI handler ``name`` defined in ``app.ui.<module>``."""
    found = []
    for index, block_fn in app.state.demo.fns.items():
        fn = block_fn.fn
        fn = getattr(getattr(fn, "__self__", None), "fn", fn)  # gr.render wraps its function
        fn = inspect.unwrap(fn) if fn is not None else fn
        if fn is not None and fn.__module__ == f"app.ui.{module}" and fn.__name__ == name:
            found.append(index)
    assert found, f"no handler {module}.{name}"
    return found[0]


def call_handler(api, key: str, module: str, name: str, data: list, timeout: float = 60.0) -> dict:
    """Call a UI handler directly through Gradio's queue; returns the final ``process_completed``
    message (``success`` and ``output``: ``data`` or ``error``)."""
    index = handler_index(api.app, module, name)
    session = uuid.uuid4().hex[:10]
    with httpx.Client(base_url=api.base, headers=headers(key), timeout=timeout) as client:
        joined = client.post("/gradio_api/queue/join", json={"data": data, "fn_index": index, "session_hash": session,
                                                              "event_data": None, "trigger_id": None})
        assert joined.status_code == 200, joined.text
        with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError("no answer from the queue")


def refused(msg: dict) -> str:
    """The error text of a handler call that must have failed."""
    assert msg["success"] is False, f"the call succeeded: {msg}"
    return str(msg["output"].get("error") or "")


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A small PNG whose header claims ``width``×``height`` pixels (the decompression-bomb shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def png_bytes(colour: str = "red", size: int = 16) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()
