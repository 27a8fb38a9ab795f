"""A local run's size is bounded before the job is stored: the message names the limit."""

from __future__ import annotations

import pytest

from app.access import LOCAL
from app.db import Job
from core.errors import ValidationError
from engines.local.limits import Budget, check_budget
from engines.local.sdxl import SdxlParams
from engines.local.svd import SvdParams
from engines.local.wan_t2v import WanT2VParams

WAN = "wan2.1-t2v-1.3b"


def test_the_largest_valid_wan_request_is_refused_before_it_is_stored(studio):
    before = Job.select().count()
    request = {"engine": WAN, "prompt": "too big", "params": {"width": 1920, "height": 1920, "num_frames": 257,
                                                              "num_inference_steps": 1}}
    with pytest.raises(ValidationError) as err:
        studio.service.submit(request, LOCAL)
    assert "79,626,240" in err.value.en and "1280×768 × 81 frames" in err.value.en
    assert "1920×1920 × 257" in err.value.en
    assert "79,626,240" in err.value.zh and "帧" in err.value.zh
    assert Job.select().count() == before


def test_a_request_at_the_budget_is_accepted():
    budget = Budget(1280, 720, 81)
    check_budget(WAN, budget, WanT2VParams(width=1280, height=720, num_frames=81))
    check_budget(WAN, budget, WanT2VParams(width=832, height=480, num_frames=161))
    with pytest.raises(ValidationError, match="at most 74,649,600"):
        check_budget(WAN, budget, WanT2VParams(width=1280, height=720, num_frames=85))


@pytest.mark.parametrize("engine_id, params, ok", [
    ("sdxl", SdxlParams(width=1024, height=1024, num_images=8), True),
    ("sdxl", SdxlParams(width=2048, height=2048, num_images=3), False),
    ("svd-xt", SvdParams(width=1024, height=576, num_frames=64), True),
    ("svd-xt", SvdParams(width=2048, height=2048, num_frames=25), False),
])
def test_every_local_engine_has_a_budget(engine_id, params, ok, workspace):
    from app.settings import load_settings
    from engines.local.limits import run_size
    from engines.registry import build_engines

    engine = build_engines(load_settings(workspace))[engine_id]
    assert engine.budget is not None and run_size(params) is not None

    class Request:
        pass

    request = Request()
    request.params = params
    if ok:
        check_budget(engine.id, engine.budget, params)
    else:
        with pytest.raises(ValidationError, match="images|frames"):
            engine.check(request)


def test_no_diffusers_engine_is_unbounded():
    from engines.local.diffusers_engine import DiffusersEngine
    from engines.registry import ENGINE_CLASSES

    unbounded = [c.id for c in ENGINE_CLASSES if issubclass(c, DiffusersEngine) and c.budget is None]
    assert unbounded == []
