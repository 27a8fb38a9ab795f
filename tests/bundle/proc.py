"""Run the studio (frozen binary or ``python launch.py``) as a child process in a sealed-off
environment: its own HOME, XDG folders, temp folder and an empty working directory, so a
test can list them afterwards and prove nothing was written outside the workspace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SEALED = ("home", "config", "data", "cache", "state", "runtime", "tmp", "cwd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sandbox:
    root: Path

    def __post_init__(self):
        for name in (*SEALED, "ws", "logs"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "runtime", 0o700)

    @property
    def workspace(self) -> Path:
        return self.root / "ws"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    def env(self, **extra: str) -> dict[str, str]:
        """A minimal environment: no proxies, no real home, every per-user folder redirected."""
        r = self.root
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(r / "home"), "USERPROFILE": str(r / "home"),
            "XDG_CONFIG_HOME": str(r / "config"), "XDG_DATA_HOME": str(r / "data"),
            "XDG_CACHE_HOME": str(r / "cache"), "XDG_STATE_HOME": str(r / "state"),
            "XDG_RUNTIME_DIR": str(r / "runtime"),
            "APPDATA": str(r / "config"), "LOCALAPPDATA": str(r / "data"),
            "TMPDIR": str(r / "tmp"), "TMP": str(r / "tmp"), "TEMP": str(r / "tmp"),
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if sys.platform == "win32":
            env["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", r"C:\Windows")
        env.update(extra)
        return env

    def written_outside(self) -> dict[str, list[str]]:
        """Files and folders created in the sealed folders (should be none)."""
        found = {}
        for name in SEALED:
            items = sorted(p.relative_to(self.root / name).as_posix() for p in (self.root / name).rglob("*"))
            if items:
                found[name] = items
        return found


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class App:
    """One studio process; stdout/stderr go to files under ``<sandbox>/logs``."""

    def __init__(self, cmd: list[str], sandbox: Sandbox, port: int, env: dict[str, str], tag: str = "app"):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.out_path = sandbox.root / "logs" / f"{tag}.out"
        self.err_path = sandbox.root / "logs" / f"{tag}.err"
        self._out = open(self.out_path, "wb")  # noqa: SIM115 (closed in stop())
        self._err = open(self.err_path, "wb")  # noqa: SIM115
        self.t0 = time.perf_counter()
        # Windows: a process group of its own, so stop() can send it Ctrl-Break (it has no SIGTERM)
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" else {}
        self.proc = subprocess.Popen(cmd, cwd=sandbox.cwd, env=env, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, **group)

    def output(self) -> str:
        text = ""
        for p in (self.out_path, self.err_path):
            if p.exists():
                text += p.read_text(encoding="utf-8", errors="replace")
        return text

    def wait_ready(self, timeout: float = 120.0, path: str = "/health") -> float:
        """Seconds from spawn to the first HTTP 200 on ``path``."""
        deadline = self.t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"studio exited with {self.proc.returncode} before serving:\n{self.output()[-4000:]}")
            try:
                status, _ = get(self.url + path, timeout=2.0)
                if status == 200:
                    return time.perf_counter() - self.t0
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"no HTTP 200 on {path} within {timeout:.0f} s:\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 30.0, sig: int | None = None) -> int:
        """Ask it to stop as the system would (SIGTERM; Ctrl-Break on Windows, which has no
        SIGTERM), or with ``sig``, then wait; the exit code."""
        if sig is None:
            sig = signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGTERM
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"studio did not stop within {timeout:.0f} s of signal {sig}") from None
        self._out.close()
        self._err.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._out.close()
        self._err.close()
