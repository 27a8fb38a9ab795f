"""Human controls → raw parameters: every result validates against the engine's own Params."""

from __future__ import annotations

import pytest

from app.ui import controls
from engines.registry import ENGINE_CLASSES

VIDEO = [c for c in ENGINE_CLASSES if controls.has_controls(c)["aspect"]]


@pytest.mark.parametrize("cls", VIDEO, ids=lambda c: c.id)
@pytest.mark.parametrize("aspect", controls.ASPECTS)
@pytest.mark.parametrize("quality", controls.QUALITIES)
def test_every_combination_is_valid_for_the_engine(cls, aspect, quality):
    raw = controls.human_params(cls, aspect, quality, 3, "draft" if controls.has_controls(cls)["preset"] else None)
    cls.Params.model_validate(raw)
    if "width" in raw:
        w, h = raw["width"], raw["height"]
        assert (w > h) == (aspect == "16:9") and (w == h) == (aspect == "1:1"), raw


def test_wan_seconds_become_4k_plus_1_frames_and_the_default_shape_is_native():
    from engines.local.wan_t2v import WanT2VEngine

    assert controls.human_params(WanT2VEngine, "16:9", "medium", 5, "standard") == {
        "width": 832, "height": 480, "num_frames": 81, "num_inference_steps": 50, "guidance_scale": 5.0}
    for seconds in range(1, 17):
        n = controls.frames_for(WanT2VEngine, seconds)
        assert (n - 1) % 4 == 0 and abs(n - seconds * 16) <= 2 and n <= 257
    draft, fine = (controls.preset_for(WanT2VEngine, p)["num_inference_steps"] for p in ("draft", "fine"))
    assert draft < 50 < fine


def test_cloud_engines_get_their_own_fields():
    from engines.cloud.ark import ArkEngine

    assert controls.human_params(ArkEngine, "9:16", "high", 10) == {"ratio": "9:16", "resolution": "1080p",
                                                                      "duration": 10}
