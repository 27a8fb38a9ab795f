"""Stopping on every exit path: Windows' console close / log-off decisions (app.winstop), the
launcher's signal wiring, and the team supervisor passing a stop on to its worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from app import winstop
from core import platform

ROOT = Path(__file__).resolve().parents[1]


class Studio:
    """Stands in for the server: stopping it takes a moment, on another thread."""

    def __init__(self):
        self.stop_asked = threading.Event()
        self.stopped = threading.Event()

    def request_stop(self):
        self.stop_asked.set()
        threading.Thread(target=self.stopped.set).start()


@pytest.mark.parametrize("event", [winstop.CTRL_C_EVENT, winstop.CTRL_BREAK_EVENT])
def test_ctrl_c_and_ctrl_break_are_left_to_python(event):
    studio = Studio()
    assert winstop.console_event(event, studio.request_stop, studio.stopped) is False
    assert not studio.stop_asked.is_set()  # SIGINT / SIGBREAK reach uvicorn as signals


@pytest.mark.parametrize("event", [winstop.CTRL_CLOSE_EVENT, winstop.CTRL_LOGOFF_EVENT, winstop.CTRL_SHUTDOWN_EVENT])
def test_closing_the_console_or_logging_off_stops_and_waits(event):
    studio = Studio()
    assert winstop.console_event(event, studio.request_stop, studio.stopped, grace=60) is True
    assert studio.stop_asked.is_set() and studio.stopped.is_set()  # returned only once stopped


def test_end_session_window_messages():
    studio = Studio()
    assert winstop.window_message(winstop.WM_QUERYENDSESSION, 0, studio.request_stop, studio.stopped) == 1
    assert winstop.window_message(winstop.WM_ENDSESSION, 0, studio.request_stop, studio.stopped) == 0
    assert not studio.stop_asked.is_set()  # the log-off was cancelled
    assert winstop.window_message(0x000F, 0, studio.request_stop, studio.stopped) is None  # WM_PAINT: default
    assert winstop.window_message(winstop.WM_ENDSESSION, 1, studio.request_stop, studio.stopped, grace=60) == 0
    assert studio.stopped.is_set()


def test_install_is_a_no_op_off_windows(monkeypatch):
    monkeypatch.setattr(platform, "IS_WINDOWS", False)
    assert winstop.install(lambda: None, threading.Event()) is False


@pytest.mark.skipif(sys.platform == "win32", reason="SIGHUP is POSIX")
def test_launcher_turns_a_hangup_into_a_clean_server_stop():
    import launch

    class Server:
        def __init__(self):
            self.exits = []

        def handle_exit(self, sig, frame):
            self.exits.append(sig)

    saved = {sig: signal.getsignal(sig) for sig in platform.stop_signals()}
    server = Server()
    try:
        stopped = launch.stop_on_every_exit_path(server)
        assert signal.getsignal(signal.SIGTERM) is launch._exit_cleanly
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(1000):  # the handler runs between bytecodes of this thread
            if server.exits:
                break
            threading.Event().wait(0.01)
        assert server.exits == [signal.SIGTERM]  # uvicorn re-raises SIGTERM when done: exit 0
        assert not stopped.is_set()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


CHILD = """
import signal, sys, threading, time
from pathlib import Path
out = Path(sys.argv[1]) / ("gpu" + sys.argv[sys.argv.index("--gpus") + 1])
stop = threading.Event()
if "stubborn" not in out.parent.name:
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
import os
out.with_suffix(".tmp").write_text(str(os.getpid()), encoding="utf-8")
os.replace(out.with_suffix(".tmp"), out.with_suffix(".up"))  # whole, or not there yet
stop.wait(600)
out.with_suffix(".stopped").write_text("clean", encoding="utf-8")
"""


def _supervisor(tmp_path: Path, folder: str, grace: float) -> tuple[subprocess.Popen, Path]:
    work = tmp_path / folder
    work.mkdir()
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent(CHILD), encoding="utf-8")
    code = (f"import sys; sys.argv = [{str(child)!r}, {str(work)!r}, '--gpus', '0,1']\n"
            f"from app.team.cli import _supervise\nsys.exit(_supervise(['0', '1'], grace={grace}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(6000):
        if len(list(work.glob("*.up"))) == 2:
            return proc, work
        assert proc.poll() is None, "the supervisor died"
        threading.Event().wait(0.02)
    proc.kill()
    pytest.fail("the workers never started")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX branch for real; Windows' is the Ctrl-Break above")
def test_supervisor_passes_a_stop_to_each_worker_process(tmp_path):
    proc, work = _supervisor(tmp_path, "polite", grace=60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    assert sorted(p.name for p in work.glob("*.stopped")) == ["gpu0.stopped", "gpu1.stopped"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX branch for real")
def test_supervisor_kills_a_worker_that_will_not_stop(tmp_path):
    proc, work = _supervisor(tmp_path, "stubborn", grace=1)
    pids = [int(p.read_text(encoding="utf-8")) for p in work.glob("*.up")]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) != 0  # a worker was killed after the grace period
    assert list(work.glob("*.stopped")) == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)  # killed and reaped
