"""Fixtures for the desktop-bundle tests: the built lite bundle (cached by source hash) and a
real tiny MP4 for the fake vendor to serve."""

from __future__ import annotations

import importlib.util
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "bundle: builds the PyInstaller bundle and runs the binary (slow)")


@pytest.fixture(scope="session")
def lite_bundle():
    from tests.bundle.builder import build_bundle

    if importlib.util.find_spec("PyInstaller") is None and not os.environ.get("XIANYING_BUNDLE_DIR"):
        message = "PyInstaller is not installed: pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder, _seconds = build_bundle("lite")
    return folder


@pytest.fixture(scope="session")
def bundle_mp4(tmp_path_factory) -> bytes:
    from tests.cloud.fakeserver import tiny_mp4

    return tiny_mp4(tmp_path_factory.mktemp("video") / "tiny.mp4").read_bytes()
