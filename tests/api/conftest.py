"""Fixtures for the REST layer: an app over an isolated studio, keys, a real uvicorn server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import install_weights

CLOUD_ENV = ("DASHSCOPE_API_KEY", "DASHSCOPE_HTTP_BASE_URL", "ZHIPUAI_API_KEY", "ZHIPUAI_BASE_URL", "ARK_API_KEY",
             "ARK_BASE_URL", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_VOD_SUBAPPID",
             "TENCENTCLOUD_VOD_ENDPOINT")


@dataclass
class Api:
    studio: object
    app: object
    client: object
    keys: dict = field(default_factory=dict)

    def key(self, user: str, admin: bool = False) -> str:
        _, key = self.studio.ops.keys.create(user, admin=admin)
        self.keys[user] = key
        return key

    @staticmethod
    def auth(key: str) -> dict:
        return {"Authorization": f"Bearer {key}"}

    def job(self, job_id: str):
        from app.db import Job, connection

        with connection():
            return Job.get_by_id(job_id)

    def wait(self, job_id: str, statuses=("succeeded", "failed", "cancelled"), timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job.status in statuses:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} is still {self.job(job_id).status} after {timeout}s")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in CLOUD_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {"XIANYING_POLL_SCALE": "0.01", "XIANYING_RETRY_INITIAL": "0.01",
                        "XIANYING_RETRY_MAX_WAIT": "0.05", "XIANYING_HTTP_TIMEOUT": "5",
                        "NO_PROXY": "127.0.0.1,localhost"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("weights") / "sdxl")


@pytest.fixture(scope="session")
def mp4_bytes(tmp_path_factory) -> bytes:
    from tests.cloud.fakeserver import tiny_mp4

    return tiny_mp4(tmp_path_factory.mktemp("video") / "tiny.mp4").read_bytes()


def write_yaml(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.fixture
def make_api(workspace, tiny_wan_dir):
    """``make_api(rest=..., users=..., start=False, host=None, weights=..., keys=..., client=True)`` → Api.

    ``start=True`` starts the queue workers with the app (jobs really run); otherwise jobs stay
    queued, which is what shape tests want.
    """
    stack = contextlib.ExitStack()
    made = []

    def make(*, rest: dict | None = None, users: dict | None = None, start: bool = False, host: str | None = None,
             weights: dict | None = None, keys: dict | None = None, client: bool = True) -> Api:
        from fastapi.testclient import TestClient

        from app.server import create_app
        from app.settings import load_settings
        from app.studio import Studio

        if rest is not None:
            write_yaml(workspace / "rest.yaml", rest)
        for name, data in (users or {}).items():
            write_yaml(workspace / "users" / f"{name}.yaml", data)
        for engine_id, source in ({"wan2.1-t2v-1.3b": tiny_wan_dir} if weights is None else weights).items():
            if not (workspace / "models" / engine_id).exists():
                install_weights(workspace, engine_id, source)
        studio = Studio(load_settings(workspace, host=host))
        made.append(studio)
        created = {}
        for user, admin in (keys or {}).items():
            created[user] = studio.ops.keys.create(user, admin=admin)[1]
        app = create_app(studio, manage_studio=start)
        test_client = stack.enter_context(TestClient(app)) if client else None
        return Api(studio, app, test_client, created)

    yield make
    stack.close()
    for studio in made:
        if studio.started:
            studio.stop()
        else:
            studio.queue.close()
            studio.database.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app):
    """Run ``app`` on a real uvicorn server in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                          log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
