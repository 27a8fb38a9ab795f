"""``python launch.py`` under the same seal as the bundle: it stays in its workspace and stops
promptly and cleanly on SIGTERM (Ctrl-Break on Windows) even while a client holds a Gradio
heartbeat stream, and on SIGHUP (its terminal closed)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tests.bundle.proc import App, Sandbox, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_launch_stays_in_workspace_and_stops_cleanly_with_a_client_connected(tmp_path):
    from gradio_client import Client

    sandbox = Sandbox(tmp_path / "sandbox")
    port = free_port()
    cmd = [sys.executable, str(ROOT / "launch.py"), "--no-browser", "--workspace", str(sandbox.workspace),
           "--port", str(port)]
    app = App(cmd, sandbox, port, sandbox.env(PYTHONPATH=str(ROOT)), tag="dev")
    try:
        app.wait_ready(timeout=120)
        client = Client(app.url, download_files=str(tmp_path / "downloads"), verbose=False)
        engines = client.predict(api_name="/engines")
        assert any(e["id"] == "wan2.1-t2v-1.3b" for e in engines)
        t0 = time.perf_counter()
        code = app.stop(timeout=30)
        stop_s = time.perf_counter() - t0
        client.close()
    finally:
        app.kill()
    log = app.output()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log and "timeout graceful shutdown" not in log, log[-3000:]
    assert stop_s < 5.0, f"stopping took {stop_s:.1f} s (the heartbeat stream held it)"
    assert (sandbox.workspace / "config.yaml").is_file()
    assert sandbox.written_outside() == {}


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGHUP on Windows (app.winstop covers console close)")
def test_launch_stops_cleanly_when_its_terminal_closes(tmp_path):
    sandbox = Sandbox(tmp_path / "sandbox")
    port = free_port()
    cmd = [sys.executable, str(ROOT / "launch.py"), "--no-browser", "--workspace", str(sandbox.workspace),
           "--port", str(port)]
    saved = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # a suite run under nohup would pass SIG_IGN on
    try:
        app = App(cmd, sandbox, port, sandbox.env(PYTHONPATH=str(ROOT)), tag="hup")
    finally:
        signal.signal(signal.SIGHUP, saved)
    try:
        app.wait_ready(timeout=120)
        code = app.stop(timeout=30, sig=signal.SIGHUP)
    finally:
        app.kill()
    log = app.output()
    assert code == 0, log[-3000:]
    assert "Xianying Studio stopped" in log and "Traceback" not in log, log[-3000:]
