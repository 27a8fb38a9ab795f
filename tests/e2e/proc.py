"""Run the studio as a real subprocess (``python launch.py``) for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Windows has no SIGTERM to send: the studio gets Ctrl-Break, in a process group of its own
STOP = signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGTERM
WINDOWS_GROUP = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudioProcess:
    def __init__(self, workspace: Path, port: int | None = None, env: dict | None = None,
                 log_path: Path | None = None):
        self.workspace = workspace
        self.port = port or free_port()
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1", "XIANYING_CLOUD_PROCESS": "1", **(env or {})}
        self.log_path = log_path or workspace.parent / f"studio-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> "StudioProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), "--no-browser", "--port", str(self.port),
             "--workspace", str(self.workspace)], cwd=str(ROOT), env=self.env, stdout=log, stderr=subprocess.STDOUT,
            **WINDOWS_GROUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"studio exited with {self.proc.returncode}; log:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"studio did not answer within {timeout}s; log:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:] if self.log_path.exists() else ""

    def kill9(self) -> None:
        if sys.platform == "win32":
            self.proc.kill()  # TerminateProcess: no cleanup at all, like SIGKILL
        else:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(STOP)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else 0
