"""What the bundle relies on, checked without building it: frozen defaults, first start,
windowed output, and that the app runs with torch/diffusers/transformers absent."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import launch
from app.settings import Settings, default_config_text, default_workspace, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_default_config_lists_every_setting_commented_and_uncomments_to_the_defaults(tmp_path):
    text = default_config_text()
    body = [ln for ln in text.splitlines() if ln.strip()]
    assert all(ln.startswith("#") for ln in body)
    assert yaml.safe_load(text) is None  # as written it changes nothing
    settings_part = text.split("\n\n", 1)[1]
    data = yaml.safe_load("\n".join(ln[2:] for ln in settings_part.splitlines()))
    assert set(data) == set(Settings.model_fields) - {"workspace", "host", "port"}
    assert Settings.model_validate({**data, "workspace": tmp_path}) == Settings(workspace=tmp_path)


def test_first_start_writes_config_once_and_load_settings_reads_it(tmp_path):
    ws = tmp_path / "ws"
    settings = load_settings(ws)
    launch.first_start(settings)
    cfg = ws / "config.yaml"
    assert cfg.read_text(encoding="utf-8") == default_config_text()
    cfg.write_text("queue:\n  io_workers: 7\n", encoding="utf-8")
    launch.first_start(settings)  # an existing file is never overwritten
    assert load_settings(ws).queue.io_workers == 7


def test_frozen_default_workspace_is_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("XIANYING_HOME", raising=False)
    assert default_workspace() == Path("workspace")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ws = default_workspace()
    if sys.platform.startswith("linux"):
        assert ws == tmp_path / "data" / "xianying"
    assert Path.cwd() not in ws.parents and ROOT not in ws.parents
    monkeypatch.setenv("XIANYING_HOME", str(tmp_path / "mine"))
    assert default_workspace() == tmp_path / "mine"
    assert load_settings(tmp_path / "flag").workspace == (tmp_path / "flag").resolve()  # --workspace wins


def test_windowed_build_output_goes_to_the_workspace_log(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    handler = logging.StreamHandler()  # made while stderr is None, as in a windowed build
    delayed = logging.FileHandler(tmp_path / "other.log", delay=True)  # someone else's file: left alone
    assert handler.stream is None and delayed.stream is None
    root = logging.getLogger()
    root.addHandler(handler)
    root.addHandler(delayed)
    try:
        launch.redirect_missing_output(tmp_path)
        stream = sys.stdout
        assert isinstance(stream, io.TextIOBase) and sys.stderr is stream and handler.stream is stream
        assert delayed.stream is None
        print("hello from a windowed build")
        root.warning("a warning reaches the log")
        stream.close()
    finally:
        root.removeHandler(handler)
        root.removeHandler(delayed)
        delayed.close()
    text = (tmp_path / "logs" / "xianying.log").read_text(encoding="utf-8")
    assert "hello from a windowed build" in text and "a warning reaches the log" in text


def test_redirect_leaves_a_console_alone(tmp_path):
    out = sys.stdout
    launch.redirect_missing_output(tmp_path)
    assert sys.stdout is out and not (tmp_path / "logs").exists()


LITE = textwrap.dedent("""
    import json, sys

    for name in ("torch", "diffusers", "transformers", "accelerate", "safetensors"):
        sys.modules[name] = None  # as if not installed: import fails, find_spec() is None
    from fastapi.testclient import TestClient
    from app.server import create_app
    from app.settings import load_settings
    from app.studio import Studio

    studio = Studio(load_settings(sys.argv[1]))
    with TestClient(create_app(studio)) as client:
        health = client.get("/health").json()
        page = client.get("/").status_code
    heavy = sorted(m for m, v in sys.modules.items() if v is not None
                   and m.split(".")[0] in ("torch", "diffusers", "transformers"))
    print(json.dumps({"health": health, "page": page, "heavy": heavy}))
""")


def test_app_runs_without_torch_diffusers_transformers(tmp_path):
    import json

    env = {"GRADIO_ANALYTICS_ENABLED": "False", "XIANYING_SECRETS": str(tmp_path / "secrets.yaml"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    proc = subprocess.run([sys.executable, "-c", LITE, str(tmp_path / "ws")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["page"] == 200
    engines = result["health"]["engines"]
    assert engines["wan2.1-t2v-1.3b"] is False  # local engines listed but unavailable
    assert len(engines) > 1


def test_spec_refuses_an_unknown_variant(tmp_path):
    pytest.importorskip("PyInstaller")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XIANYING_BUNDLE": "medium"}
    proc = subprocess.run([sys.executable, "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm",
                           "--distpath", str(tmp_path / "dist"), "--workpath", str(tmp_path / "work")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "XIANYING_BUNDLE must be 'lite' or 'full'" in proc.stdout + proc.stderr
    assert not list((tmp_path / "dist").glob("xianying*"))
