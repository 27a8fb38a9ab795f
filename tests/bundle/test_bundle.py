"""CI smoke test of the desktop bundle: build the lite variant, start the binary sealed off from
the user's folders, drive one cloud job through gradio_client against a loopback DashScope,
fetch the MP4, stop it with SIGTERM (Ctrl-Break on Windows), and check that nothing was
written outside the workspace. .github/workflows/windows.yml runs it on Windows."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from tests.bundle.builder import exe_in
from tests.bundle.proc import App, Sandbox, free_port, get

pytestmark = [pytest.mark.bundle, pytest.mark.timeout(900)]

KEY = "sk-bundle-smoke-7d1c9e0b4a2f6e85"
FAST = {"XIANYING_POLL_SCALE": "0.02", "XIANYING_RETRY_MAX_WAIT": "0.1", "XIANYING_RETRY_INITIAL": "0.02",
        "XIANYING_HTTP_TIMEOUT": "10", "XIANYING_LOG_LEVEL": "INFO"}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def workspace_bytes_contain(ws: Path, needle: bytes) -> list[str]:
    return [p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_lite_bundle_carries_the_app_but_no_torch(lite_bundle):
    internal = lite_bundle / "_internal"
    assert exe_in(lite_bundle).is_file()
    for heavy in ("torch", "diffusers", "transformers", "accelerate", "safetensors"):
        assert not (internal / heavy).exists(), f"{heavy} must not be in the lite bundle"
    assert (internal / "gradio" / "templates").is_dir()  # Gradio's built frontend
    assert (internal / "gradio" / "blocks.py").is_file()  # collected as source (hook-gradio)
    assert list((internal / "imageio_ffmpeg" / "binaries").glob("ffmpeg*")), "the ffmpeg binary is missing"
    assert (internal / "safehttpx").is_dir() and (internal / "groovy").is_dir()


def test_lite_bundle_serves_a_cloud_job_and_stays_in_its_workspace(lite_bundle, tmp_path, bundle_mp4):
    from gradio_client import Client

    from core.media import probe
    from tests.cloud.fake_dashscope import FakeDashScope

    sandbox = Sandbox(tmp_path / "sandbox")
    before = snapshot(lite_bundle)
    fake = FakeDashScope(KEY, bundle_mp4).start()
    port = free_port()
    env = sandbox.env(DASHSCOPE_API_KEY=KEY, DASHSCOPE_HTTP_BASE_URL=fake.base_url, **FAST)
    cmd = [str(exe_in(lite_bundle)), "--no-browser", "--workspace", str(sandbox.workspace), "--port", str(port)]
    app = App(cmd, sandbox, port, env, tag="lite")
    try:
        app.wait_ready(timeout=120)
        status, body = get(app.url + "/health")
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok"
        assert health["engines"]["dashscope"] is True, health
        assert health["engines"]["wan2.1-t2v-1.3b"] is False  # no torch in lite: listed, unavailable
        assert get(app.url + "/")[0] == 200  # the Gradio page renders from the bundled templates

        client = Client(app.url, download_files=str(tmp_path / "downloads"), verbose=False)
        sub = client.predict({"engine": "dashscope", "prompt": "一只白鹤飞过云海",
                              "params": {"model": "wanx2.1-t2v-turbo", "size": "832*480"}}, api_name="/submit")
        deadline = time.monotonic() + 60
        while True:
            st = client.predict(sub["task_id"], api_name="/status")
            if st["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert st["status"] == "succeeded", st
        video = Path(client.predict(sub["task_id"], api_name="/result"))
        assert video.read_bytes()[4:8] == b"ftyp"
        assert probe(video)["frames"] == 8
        assert fake.count("create") == 1
        out = st["outputs"][0]
        assert (sandbox.workspace / out["file"]).is_file()
        assert (sandbox.workspace / out["thumbnail"]).is_file()  # PyAV decoded it inside the bundle
        client.close()
        code = app.stop()
    finally:
        app.kill()
        fake.stop()

    log = app.output()
    assert code == 0, log[-3000:]
    assert "Xianying Studio stopped" in log and f"http://127.0.0.1:{port}" in log
    assert "Traceback" not in log, log[-3000:]
    assert sandbox.written_outside() == {}
    assert snapshot(lite_bundle) == before, "the bundle folder was written to"
    ws = sandbox.workspace
    assert (ws / "config.yaml").is_file() and (ws / "studio.db").is_file()
    from profiles.samples import sample_ids

    assert sample_ids(), "profiles/samples ships no sample project"
    for sample in sample_ids():  # the first start copies the built-in samples (bundled as data)
        assert (ws / "projects" / sample / "project.yaml").is_file(), sample
    assert KEY not in log
    assert workspace_bytes_contain(ws, KEY.encode()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="the fake browser is a shell script")
def test_frozen_default_workspace_and_browser(lite_bundle, tmp_path):
    """Without --workspace the bundle uses platformdirs' user data folder, not CWD or itself;
    without --no-browser it opens the URL, and the browser does not inherit the bundle's
    library path (the runtime hook restores LD_LIBRARY_PATH for child processes)."""
    sandbox = Sandbox(tmp_path / "sandbox")
    seen = sandbox.root / "logs" / "browser.txt"
    browser = sandbox.root / "logs" / "fake-browser.sh"
    browser.write_text(f'#!/bin/sh\necho "URL=$1" > "{seen}"\nenv >> "{seen}"\n', encoding="utf-8")
    browser.chmod(0o755)
    port = free_port()
    env = sandbox.env(BROWSER=str(browser), LD_LIBRARY_PATH="/opt/user-libs")
    app = App([str(exe_in(lite_bundle)), "--port", str(port)], sandbox, port, env)
    try:
        app.wait_ready(timeout=120)
        deadline = time.monotonic() + 20
        while not (seen.exists() and "URL=" in seen.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        code = app.stop()
    finally:
        app.kill()
    assert code == 0, app.output()[-3000:]
    opened = seen.read_text(encoding="utf-8").splitlines()
    assert f"URL=http://127.0.0.1:{port}" in opened
    assert "LD_LIBRARY_PATH=/opt/user-libs" in opened
    if sys.platform.startswith("linux"):
        expected = sandbox.root / "data" / "xianying"  # $XDG_DATA_HOME/xianying
        assert (expected / "config.yaml").is_file() and (expected / "studio.db").is_file()
        assert str(expected) in app.output()
    written = sandbox.written_outside()
    assert len(written) == 1, written  # only the user data folder
    (files,) = written.values()
    assert all("xianying" in f for f in files), written
