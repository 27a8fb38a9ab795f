"""Shared fixtures: isolated workspaces, tiny model folders, a started Studio."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# local jobs run inside the test's studio (fast, and cache counters are visible); the process
# isolation that launch.py uses by default has its own tests (tests/local/test_isolation.py)
os.environ.setdefault("XIANYING_GPU_ISOLATION", "thread")
# cloud chains run in the test's own process too, where tests watch and patch them; the cloud
# process (app/cloud_host.py, on by default) has its own tests, and launch.py in tests/e2e/proc.py has it on
os.environ.setdefault("XIANYING_CLOUD_PROCESS", "0")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def cloud_loop_closed_at_the_end():
    """Tests that drive an engine on the cloud loop without a studio leave it running: its HTTP session
    is closed at the end, as a studio's stop closes it (else aiohttp warns at exit)."""
    yield
    from engines.cloud import aio

    aio.shutdown()


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_wan_t2v

    return build_tiny_wan_t2v(tmp_path_factory.mktemp("weights") / "wan2.1-t2v-1.3b")


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    ws = tmp_path / "ws 工作区"
    ws.mkdir()
    monkeypatch.setenv("XIANYING_SECRETS", str(tmp_path / "secrets.yaml"))
    return ws


def install_weights(workspace: Path, engine_id: str, source: Path) -> Path:
    target = workspace / "models" / engine_id
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target)
    return target


@pytest.fixture
def studio(workspace, tiny_wan_dir):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    install_weights(workspace, "wan2.1-t2v-1.3b", tiny_wan_dir)
    st = Studio(load_settings(workspace))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


def wait_for(fn, timeout: float = 60.0, interval: float = 0.05):
    """Poll ``fn`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
