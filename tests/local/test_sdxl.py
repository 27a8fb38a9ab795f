"""SDXL specifics: LoRA files, scheduler choice, batches, and the models report."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.errors import ValidationError
from engines.base import EngineRequest

from .conftest import CASES, install_case, make_engine

CASE = next(c for c in CASES if c.engine_id == "sdxl")


@pytest.fixture(scope="module")
def sdxl(request, tmp_path_factory, tiny_lora):
    from app.settings import load_settings

    ws = tmp_path_factory.mktemp("sdxl")
    install_case(request, ws, CASE)
    (ws / "models" / "loras").mkdir()
    shutil.copy(tiny_lora, ws / "models" / "loras" / tiny_lora.name)
    return make_engine(load_settings(ws), "sdxl")


def images(engine, tmp_path, name, **params):
    from PIL import Image

    workdir = tmp_path / name
    workdir.mkdir()
    p = engine.Params.model_validate({"width": 64, "height": 64, "num_inference_steps": 2, "seed": 11, **params})
    request = EngineRequest(name, "a crane over a lake", "", p, workdir)
    engine.check(request)
    outs = engine.run(request, lambda *a: None, lambda: False)
    return [np.asarray(Image.open(o.path)).astype(int) for o in outs], outs


def test_lora_changes_the_image_and_switches_off(sdxl, tmp_path):
    (base,), _ = images(sdxl, tmp_path, "base")
    (styled,), outs = images(sdxl, tmp_path, "lora", loras=[{"name": "xian style", "weight": 1.0}])
    (half,), _ = images(sdxl, tmp_path, "half", loras=[{"name": "xian style", "weight": 0.3}])
    (plain,), _ = images(sdxl, tmp_path, "plain")
    assert np.abs(base - styled).mean() > 1.0
    assert 0 < np.abs(base - half).mean() < np.abs(base - styled).mean()
    assert np.abs(base - plain).max() <= 1  # the adapter is off again
    from PIL import Image

    assert "Lora: xian style:1" in Image.open(outs[0].path).text["parameters"]


def test_unknown_lora_lists_what_exists(sdxl, tmp_path):
    with pytest.raises(ValidationError) as info:
        images(sdxl, tmp_path, "bad", loras=[{"name": "nope"}])
    assert "nope.safetensors" in info.value.en and "xian style" in info.value.en


def test_scheduler_choice_and_batch_seeds(sdxl, tmp_path):
    (base,), _ = images(sdxl, tmp_path, "base")
    (dpm,), _ = images(sdxl, tmp_path, "dpm", scheduler="dpmpp_2m_karras")
    assert np.abs(base - dpm).mean() > 0.5
    batch, outs = images(sdxl, tmp_path, "batch", num_images=2)
    assert [o.meta["seed"] for o in outs] == [11, 12]
    (next_seed,), _ = images(sdxl, tmp_path, "next", seed=12)
    # image i of a batch is the single image of seed + i (up to batched-matmul rounding)
    assert np.abs(batch[0] - base).max() <= 1 and np.abs(batch[1] - next_seed).max() <= 1


def test_models_report_lists_present_and_missing(sdxl):
    from engines.local.weights import models_report
    from engines.registry import build_engines

    rows = {r["engine"]: r for r in models_report(build_engines(sdxl.settings))}
    assert rows["sdxl"]["present"] and rows["sdxl"]["size_bytes"] > 0 and rows["sdxl"]["missing"] == []
    assert any(p["name"] == "LoRA xian style" for p in rows["sdxl"]["parts"])
    assert not rows["svd-xt"]["present"] and rows["svd-xt"]["expected"].endswith("svd-xt")
    iid = rows["sdxl-instantid"]
    assert "IdentityNet ControlNetModel" in iid["missing"] and "insightface antelopev2" in iid["missing"]
    assert "wan2.1-i2v-720p" in rows and "dashscope" not in rows
