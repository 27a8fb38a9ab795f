"""Fixtures for projects and episodes: a studio with tiny local pipelines (Wan T2V, SDXL + InstantID
with a tiny face analyser, SVD) and the loopback DashScope, and a small project written as YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import install_weights
from tests.local.conftest import (TinyFaceAnalyzer, face_image, tiny_instantid_dir, tiny_root,  # noqa: F401
                                  tiny_sdxl_dir, tiny_svd_dir)

DASHSCOPE_KEY = "sk-test-projects-0a1b2c3d4e5f60718293"
TINY_WAN = {"num_inference_steps": 2}
TINY_STILL = {"num_inference_steps": 2}
TINY_SVD = {"num_inference_steps": 2, "decode_chunk_size": 2, "fps": 4}


@pytest.fixture(autouse=True)
def fast_cloud(monkeypatch):
    for name, value in {"XIANYING_POLL_SCALE": "0", "XIANYING_RETRY_ATTEMPTS": "2", "XIANYING_RETRY_MAX_WAIT": "0.05",
                        "XIANYING_RETRY_INITIAL": "0.01", "XIANYING_HTTP_TIMEOUT": "5"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def fake_dashscope(monkeypatch, tmp_path):
    from tests.cloud.fake_dashscope import FakeDashScope
    from tests.cloud.fakeserver import tiny_mp4

    server = FakeDashScope(DASHSCOPE_KEY, tiny_mp4(tmp_path / "vendor.mp4").read_bytes()).start()
    monkeypatch.setenv("DASHSCOPE_API_KEY", DASHSCOPE_KEY)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", server.base_url)
    yield server
    server.stop()


def tiny_engines(settings, secrets):
    from engines.registry import build_engines

    engines = build_engines(settings, secrets)
    engines["sdxl-instantid"].face_analyzer = TinyFaceAnalyzer()
    return engines


@pytest.fixture
def project_studio(workspace, tiny_wan_dir, tiny_sdxl_dir, tiny_instantid_dir, tiny_svd_dir, fake_dashscope):
    from app.db import db
    from app.secrets import SecretStore
    from app.settings import load_settings
    from app.studio import Studio

    for name, source in (("wan2.1-t2v-1.3b", tiny_wan_dir), ("sdxl", tiny_sdxl_dir),
                         ("sdxl-instantid", tiny_instantid_dir), ("svd-xt", tiny_svd_dir)):
        install_weights(workspace, name, source)
    settings = load_settings(workspace)
    st = Studio(settings, engines=tiny_engines(settings, SecretStore(settings.secrets_file)))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


PROJECT_YAML = """\
title: 测试 Test episode
style: xianxia
fps: 8
resolution: 64x48
negative_prompt: blurry
seed: 7
transition: cut
i2v_engine: svd-xt
t2v_engine: wan2.1-t2v-1.3b
engine_params:
  wan2.1-t2v-1.3b: {num_inference_steps: 2, fps: 8}
  sdxl-instantid: {num_inference_steps: 2}
  svd-xt: {num_inference_steps: 2, decode_chunk_size: 2, fps: 4}
  dashscope: {prompt_extend: false}
"""

CHARACTERS_YAML = """\
characters:
  hanli:
    name: 韩立 Han Li
    prompt: Han Li, young cultivator
    reference_images: [hanli/face.png]
    instantid_strength: 0.9
"""

SCENES_YAML = """\
scenes:
  - id: s1-sky
    prompt: immortal realm sky, golden scroll
    duration: 0.5
  - id: s2-hanli
    prompt: Han Li meditating on a rock
    characters: [hanli]
    duration: 0.75
    camera: medium shot
  - id: s3-cloud
    prompt: sea of clouds at sunset
    duration: 1.0
    engine: dashscope
"""


def write_project(root: Path, project_id: str = "test-ep", project: str = PROJECT_YAML,
                  characters: str = CHARACTERS_YAML, scenes: str = SCENES_YAML, face: bool = True) -> Path:
    folder = root / project_id
    (folder / "assets" / "hanli").mkdir(parents=True, exist_ok=True)
    (folder / "project.yaml").write_text(project, encoding="utf-8")
    (folder / "characters.yaml").write_text(characters, encoding="utf-8")
    (folder / "scenes.yaml").write_text(scenes, encoding="utf-8")
    if face:
        face_image(folder / "assets" / "hanli" / "face.png", seed=3)
    return folder
