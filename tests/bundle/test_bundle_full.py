"""The full bundle (torch + diffusers + transformers) runs a local job on tiny random weights.

Opt-in: building it takes several minutes and ~1.2 GB of disk with CPU torch, so CI runs it
only where ``XIANYING_BUNDLE_FULL=1`` (e.g. a nightly or release job)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.bundle.builder import build_bundle, exe_in
from tests.bundle.proc import App, Sandbox, free_port

pytestmark = [
    pytest.mark.bundle, pytest.mark.timeout(3600),
    pytest.mark.skipif(os.environ.get("XIANYING_BUNDLE_FULL") != "1",
                       reason="set XIANYING_BUNDLE_FULL=1 to build and test the full bundle"),
    pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM semantics are POSIX"),
]
WAN = "wan2.1-t2v-1.3b"


def test_full_bundle_runs_a_local_wan_job(tmp_path, tiny_wan_dir):
    pytest.importorskip("PyInstaller")
    from gradio_client import Client

    from core.media import probe

    folder, _ = build_bundle("full", timeout=3000)
    internal = folder / "_internal"
    assert (internal / "torch").is_dir() and list(internal.glob("diffusers-*.dist-info"))
    sandbox = Sandbox(tmp_path / "sandbox")
    shutil.copytree(tiny_wan_dir, sandbox.workspace / "models" / WAN)
    port = free_port()
    env = sandbox.env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [str(exe_in(folder)), "--no-browser", "--workspace", str(sandbox.workspace), "--port", str(port)]
    app = App(cmd, sandbox, port, env, tag="full")
    try:
        app.wait_ready(timeout=300)
        client = Client(app.url, download_files=str(tmp_path / "downloads"), verbose=False)
        engines = {e["id"]: e for e in client.predict(api_name="/engines")}
        assert engines[WAN]["available"], engines[WAN]
        sub = client.predict({"engine": WAN, "prompt": "a crane over the clouds",
                              "params": {"width": 48, "height": 32, "num_frames": 5, "num_inference_steps": 2,
                                         "fps": 8, "seed": 1}}, api_name="/submit")
        deadline = time.monotonic() + 600
        while True:
            st = client.predict(sub["task_id"], api_name="/status")
            if st["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert st["status"] == "succeeded", st
        video = Path(client.predict(sub["task_id"], api_name="/result"))
        info = probe(video)  # written inside the bundle by PyAV's libx264
        assert (info["codec"], info["width"], info["height"], info["frames"]) == ("h264", 48, 32, 5)
        client.close()
        code = app.stop()
    finally:
        app.kill()
    assert code == 0, app.output()[-3000:]
    assert "Traceback" not in app.output(), app.output()[-3000:]
    assert sandbox.written_outside() == {}
