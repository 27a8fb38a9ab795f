"""Private Redis and Postgres servers on loopback for team-mode tests and benchmarks.

Debian's ``redis-server`` and ``postgresql`` packages (``.ci/run`` installs them) provide the
binaries; each server here runs on a free port with its data in a temporary folder, and can be
restarted in place (same port, same data) to test reconnection. Postgres refuses to run as
root, so as root it runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bindir() -> Path | None:
    for candidate in [os.environ.get("XIANYING_PG_BINDIR", "")] + sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                                         reverse=True):
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def missing_servers() -> str | None:
    """Why team tests cannot run here, or None."""
    missing = []
    if redis_binary() is None:
        missing.append("redis-server")
    if postgres_bindir() is None:
        missing.append("postgresql (initdb, pg_ctl)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("a 'postgres' user (running as root)")
    for module in ("redis", "psycopg"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"python package {module}")
    if missing:
        return ("team-mode tests need " + ", ".join(missing) +
                " — apt-get install redis-server postgresql; pip install -e '.[team]' (.ci/run does both)")
    return None


class RedisServer:
    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=open(self.root / "redis.log", "ab"), stderr=subprocess.STDOUT)
        _wait_port(self.port)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)

    def restart(self, down_s: float = 0.0) -> None:
        """Kill -9 and start again on the same port and data: clients must reconnect."""
        self.stop(signal.SIGKILL)
        time.sleep(down_s)
        self.start()

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


class PostgresServer:
    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.bindir = postgres_bindir()
        self.as_root = os.geteuid() == 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd="/")

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            if self.as_root:
                shutil.chown(self.root, "postgres")
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "pg.log"), "-w", "start")
        _wait_port(self.port)
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop("immediate")
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def make_root(prefix: str) -> Path:
    """A temporary folder the postgres user can enter (pytest's are private to root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    return root
