"""The warm pipeline cache (LRU by size) and the low-VRAM plan / OOM retry."""

from __future__ import annotations

import pytest

from core.errors import EngineError, ValidationError
from engines.local import memory
from engines.local.memory import GiB, plan_memory

from .conftest import CASES, install_case, make_engine


@pytest.fixture
def two_engines(request, tmp_path):
    """sdxl and svd-xt sharing one cache, in a workspace with both installed."""
    from app.settings import load_settings

    for case in CASES:
        if case.engine_id in ("sdxl", "svd-xt"):
            install_case(request, tmp_path, case)
    return load_settings(tmp_path)


def load(engine):
    """Fetch the engine's pipeline through the cache (what every run does first)."""
    return engine.pipeline(engine.Params(seed=1))[0]


def test_lru_eviction_by_size(two_engines):
    from engines.local.weights import PipelineCache, pipeline_bytes

    settings = two_engines
    probe = PipelineCache(2**40)
    sizes = [pipeline_bytes(load(make_engine(settings, i, probe))) for i in ("sdxl", "svd-xt")]
    # room for the larger one, not for both
    settings.model_cache.max_size_gb = (max(sizes) + min(sizes) // 2) / GiB
    cache = PipelineCache(int(settings.model_cache.max_size_gb * GiB))
    sdxl, svd = make_engine(settings, "sdxl", cache), make_engine(settings, "svd-xt", cache)
    first = load(sdxl)
    assert load(sdxl) is first
    assert cache.loads == 1 and [k[0] for k in cache.keys()] == ["sdxl"]
    load(svd)
    assert [k[0] for k in cache.keys()] == ["svd-xt"]  # sdxl, least recently used, went
    assert load(sdxl) is not first
    assert cache.loads == 3 and [k[0] for k in cache.keys()] == ["sdxl"]


def test_cache_size_zero_keeps_nothing(two_engines):
    from engines.local.weights import PipelineCache

    cache = PipelineCache(0)
    sdxl = make_engine(two_engines, "sdxl", cache)
    load(sdxl)
    load(sdxl)
    assert cache.loads == 2 and cache.keys() == []


def test_oom_frees_cache_and_retries_once_with_offload(two_engines, tmp_path):
    import torch

    engine = make_engine(two_engines, "sdxl")
    calls = []

    def flaky(pipe, device):
        calls.append(engine.last_plan)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    p = engine.Params(seed=1)
    assert engine.generate(p, flaky) == "done"
    assert len(calls) == 2 and engine.cache.loads == 2  # the cache was emptied, then reloaded

    def always(pipe, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(EngineError) as info:
        engine.generate(p, always)
    assert "ran out of memory" in info.value.en and "offload" in info.value.en and info.value.zh


def test_other_errors_are_not_retried(two_engines):
    engine = make_engine(two_engines, "sdxl")

    def broken(pipe, device):
        raise ValueError("bad shape")

    with pytest.raises(ValueError):
        engine.generate(engine.Params(seed=1), broken)
    assert engine.cache.loads == 1


@pytest.mark.parametrize("free_gib, expected", [(40, "none"), (8, "model"), (5, "group")])
def test_auto_offload_from_free_vram(free_gib, expected):
    plan = plan_memory("auto", "cuda", need_bytes=7 * GiB, free_bytes=free_gib * GiB)
    assert plan.offload == expected and "free VRAM" in plan.reason
    assert plan.vae_tiling is (expected != "none")


def test_manual_override_and_cpu():
    assert plan_memory("sequential", "cuda", 7 * GiB, 80 * GiB).offload == "sequential"
    assert plan_memory("none", "cuda", 70 * GiB, 8 * GiB, vae_tiling=True).vae_tiling is True
    cpu = plan_memory("model", "cpu", 7 * GiB, None)
    assert cpu.offload == "none" and cpu.attention == "sdpa"
    assert memory.STRONGER["none"] == "model" and memory.STRONGER["sequential"] is None


def test_attention_choice_errors_are_clear():
    with pytest.raises(ValidationError) as info:
        memory.pick_attention("flash", "cpu", transformer=True)
    assert "attention=flash" in info.value.en
    with pytest.raises(ValidationError):
        memory.pick_attention("xformers", "cuda", transformer=False)  # not installed here
    assert memory.pick_attention("auto", "cuda", transformer=False) == "sdpa"


def test_needed_bytes_reads_safetensors_headers(tiny_sdxl_dir):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_sdxl_dir, subfolder="unet")
    params, _ = memory.weight_params(tiny_sdxl_dir / "unet")
    assert params == sum(p.numel() for p in unet.parameters())
    assert memory.needed_bytes(tiny_sdxl_dir / "unet", 2) == params * 2


def test_evicted_wan_pipeline_is_freed_at_once(request, tmp_path):
    """A Wan pipeline that has run sits in a reference cycle (diffusers' hook registry); the cache
    collects on eviction so its memory (VRAM on a GPU) comes back then, not at some later GC."""
    import gc
    import weakref

    from app.settings import load_settings
    from engines.base import EngineRequest
    from engines.local.weights import PipelineCache

    case = next(c for c in CASES if c.engine_id == "wan2.1-t2v-1.3b")
    install_case(request, tmp_path, case)
    engine = make_engine(load_settings(tmp_path), case.engine_id, PipelineCache(1))  # room for one
    (tmp_path / "w").mkdir()
    params = engine.Params.model_validate({**case.params, "num_inference_steps": 1, "seed": 1})
    engine.run(EngineRequest("j", "clouds", "", params, tmp_path / "w", []), lambda *a: None, lambda: False)
    transformer = weakref.ref(engine.cache.get(engine.cache.keys()[0], None).transformer)
    gc.disable()
    try:
        engine.cache.get(("other",), lambda: load(make_engine(load_settings(tmp_path), case.engine_id,
                                                              PipelineCache(0))))
        assert transformer() is None
    finally:
        gc.enable()
