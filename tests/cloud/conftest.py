"""Fixtures for cloud engine tests: fast retries and polls, a real tiny MP4, a started Studio.

Every test here talks only to loopback fakes (``tests/cloud/fake_*.py``).
"""

from __future__ import annotations

import pytest

from tests.cloud.fakeserver import tiny_mp4, tiny_mp4_with_audio


@pytest.fixture(scope="session")
def mp4_bytes(tmp_path_factory) -> bytes:
    return tiny_mp4(tmp_path_factory.mktemp("video") / "tiny.mp4").read_bytes()


@pytest.fixture(scope="session")
def mp4_sound_bytes(tmp_path_factory) -> bytes:
    """A tiny MP4 with an AAC track: what a vendor returns for a video made with sound."""
    return tiny_mp4_with_audio(tmp_path_factory.mktemp("video") / "sound.mp4").read_bytes()


@pytest.fixture(autouse=True)
def fast_cloud(monkeypatch):
    """Polls without delay, retries within milliseconds, short timeouts: no test waits long."""
    for name, value in {"XIANYING_POLL_SCALE": "0", "XIANYING_RETRY_ATTEMPTS": "3",
                        "XIANYING_RETRY_MAX_WAIT": "0.05", "XIANYING_RETRY_INITIAL": "0.01",
                        "XIANYING_HTTP_TIMEOUT": "5", "XIANYING_DOWNLOAD_ATTEMPTS": "3",
                        "XIANYING_DOWNLOAD_TIMEOUT": "5", "XIANYING_CREATE_SETTLE_S": "0.05",
                        "NO_PROXY": "127.0.0.1,localhost"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def cloud_studio(workspace):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    st = Studio(load_settings(workspace))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


@pytest.fixture
def studio_for(workspace, monkeypatch, mp4_bytes):
    """``make(vendor, config=None, extra=None) -> (studio, fake)``: a started Studio whose workspace has
    ``config.yaml`` = ``config`` and an extra model table ``extra`` for that vendor, and its fake."""
    import yaml

    from engines.cloud import modeltable
    from tests.cloud.vendors import VENDORS

    made = []

    def make(vendor: str, config: dict | None = None, extra: dict | None = None):
        from app.db import db
        from app.settings import load_settings
        from app.studio import Studio

        if config:
            (workspace / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        if extra:
            folder = workspace / modeltable.WORKSPACE_DIR
            folder.mkdir(exist_ok=True)
            (folder / f"{vendor}.yaml").write_text(yaml.safe_dump({"models": extra}), encoding="utf-8")
        fake = VENDORS[vendor].serve(mp4_bytes, monkeypatch)
        studio = Studio(load_settings(workspace))
        studio.start()
        ctx = db.connection_context()
        ctx.__enter__()
        made.append((studio, fake, ctx))
        return studio, fake

    yield make
    for studio, fake, ctx in made:
        if studio.started:  # (a test may have stopped it, which closed the database)
            ctx.__exit__(None, None, None)
        studio.stop()
        fake.stop()
