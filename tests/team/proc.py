"""A team in subprocesses: the studio (``python launch.py``) and workers (``launch.py worker``)
pointed at private Redis/Postgres servers (tests/team/servers.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.proc import ROOT, StudioProcess


def team_env(database_url: str, queue_url: str, **extra) -> dict:
    return {"XIANYING_DATABASE_URL": database_url, "XIANYING_QUEUE_URL": queue_url, **extra}


def create_admin_key(workspace: Path, env: dict, user: str = "worker") -> str:
    out = subprocess.run([sys.executable, str(ROOT / "launch.py"), "keys", "create", "--user", user, "--admin",
                          "--workspace", str(workspace)], cwd=str(ROOT), env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return re.search(r"(xy_[A-Za-z0-9_\-]+)", out).group(1)


class WorkerProcess:
    def __init__(self, workspace: Path, env: dict, studio_url: str, api_key: str, lanes: str = "gpu"):
        self.workspace = workspace
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                    "PYTHONUNBUFFERED": "1", "XIANYING_API_KEY": api_key, **env}
        self.args = [sys.executable, str(ROOT / "launch.py"), "worker", "--workspace", str(workspace),
                     "--lanes", lanes, "--studio-url", studio_url]
        self.log_path = workspace.parent / f"{workspace.name}.log"
        self.proc: subprocess.Popen | None = None
        self.owner: str | None = None

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, cwd=str(ROOT), env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; log:\n{self.log()}")
            found = re.findall(r"仙影 worker (\S+):", self.log())
            if found:
                self.owner = found[-1]
                return self
            time.sleep(0.2)
        raise RuntimeError(f"worker did not start within {timeout}s; log:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:] if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else 0


__all__ = ["StudioProcess", "WorkerProcess", "create_admin_key", "team_env"]
