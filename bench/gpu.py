"""Denoiser speed at the models' real dimensions, random weights, no downloads.

    python bench/gpu.py                      # full size on CUDA (tiny on a CPU)
    python bench/gpu.py --size tiny          # shrunken configs: proves the bench runs anywhere
    python bench/gpu.py --models wan --no-compile --json out.json
    python bench/gpu.py --models wan --cache-steps 50   # + first-block step caching, PSNR vs uncached

Each model is built from its published config in ``bench/configs/`` and timed for one
denoising step the way its pipeline runs it:

* Wan2.1 T2V 1.3B, 480x832, 81 frames: one step = two transformer passes (text, negative).
* SDXL UNet, 1024x1024: one step = one pass over a batch of two (classifier-free guidance).
* SVD-XT UNet, 25 frames at 576x1024: one step = one pass over a batch of two.

Two paths in the same run: ``plain`` (diffusers defaults: eager, PyTorch SDPA) and
``studio`` (the best attention backend installed, channels-last UNets, torch.compile).
FLOPs come from ``torch.utils.flop_counter``; achieved TFLOP/s is set against the GPU's dense
bf16 peak where the GPU is known.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import math
import resource
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "configs"
# dense bf16 tensor-core peaks, TFLOP/s (vendor datasheets)
BF16_PEAK = {"H200": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.4,
             "A100": 312.0, "L40S": 362.1, "RTX 4090": 165.2, "L4": 121.0, "A10G": 70.0, "A10": 125.0}


# --- model definitions -------------------------------------------------------------------
def _config(name: str) -> dict:
    cfg = json.loads((CONFIGS / name).read_text())
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def wan_spec(size: str) -> dict:
    cfg = _config("wan2.1-t2v-1.3b.transformer.json")
    # latents: 16 ch, (frames-1)/4+1 in time, /8 in space; text: 512 tokens of umT5
    frames, height, width, text_len = {"full": (81, 480, 832, 512), "small": (17, 128, 224, 128),
                                       "tiny": (9, 64, 96, 32)}[size]
    if size != "full":
        cfg.update(num_layers=4 if size == "small" else 2, num_attention_heads=4 if size == "small" else 2,
                   attention_head_dim=64 if size == "small" else 32, ffn_dim=1024 if size == "small" else 256,
                   text_dim=256 if size == "small" else 64)
    latent = (1, 16, (frames - 1) // 4 + 1, height // 8, width // 8)
    return {"name": "wan2.1-t2v-1.3b", "cls": "WanTransformer3DModel", "config": cfg, "transformer": True,
            "label": f"{width}x{height}x{frames}", "passes": 2, "steps": 50,
            "inputs": lambda t, dev, dt: {
                "hidden_states": t.randn(latent, device=dev, dtype=dt),
                "timestep": t.tensor([500], device=dev),
                "encoder_hidden_states": t.randn(1, text_len, cfg["text_dim"], device=dev, dtype=dt),
                "return_dict": False}}


def sdxl_spec(size: str) -> dict:
    cfg = _config("sdxl-base-1.0.unet.json")
    side = {"full": 1024, "small": 512, "tiny": 256}[size]
    pooled = 1280
    if size != "full":
        small = size == "small"
        pooled = 64
        cfg.update(block_out_channels=[64, 128, 256] if small else [32, 64, 64], attention_head_dim=[2, 4, 8],
                   transformer_layers_per_block=[1, 2, 2] if small else [1, 1, 1],
                   cross_attention_dim=256 if small else 64, addition_time_embed_dim=32,
                   projection_class_embeddings_input_dim=6 * 32 + pooled, norm_num_groups=32)
    lat = side // 8
    return {"name": "sdxl-unet", "cls": "UNet2DConditionModel", "config": cfg, "transformer": False,
            "label": f"{side}x{side}", "passes": 1, "steps": 30,
            "inputs": lambda t, dev, dt: {
                "sample": t.randn(2, 4, lat, lat, device=dev, dtype=dt),
                "timestep": t.tensor(500, device=dev),
                "encoder_hidden_states": t.randn(2, 77, cfg["cross_attention_dim"], device=dev, dtype=dt),
                "added_cond_kwargs": {"text_embeds": t.randn(2, pooled, device=dev, dtype=dt),
                                      "time_ids": t.tensor([[side, side, 0, 0, side, side]] * 2, device=dev,
                                                           dtype=dt)},
                "return_dict": False}}


def svd_spec(size: str) -> dict:
    cfg = _config("svd-xt.unet.json")
    frames, height, width = {"full": (25, 576, 1024), "small": (8, 256, 448), "tiny": (4, 128, 192)}[size]
    if size != "full":
        small = size == "small"
        cfg.update(block_out_channels=[64, 128, 256, 256] if small else [32, 64, 64, 64],
                   num_attention_heads=[2, 4, 8, 8], cross_attention_dim=256 if small else 64,
                   addition_time_embed_dim=32, projection_class_embeddings_input_dim=96, num_frames=frames)
    return {"name": "svd-xt-unet", "cls": "UNetSpatioTemporalConditionModel", "config": cfg, "transformer": False,
            "label": f"{width}x{height}x{frames}", "passes": 1, "steps": 25,
            "inputs": lambda t, dev, dt: {
                "sample": t.randn(2, frames, 8, height // 8, width // 8, device=dev, dtype=dt),
                "timestep": t.tensor(500.0, device=dev),
                "encoder_hidden_states": t.randn(2, 1, cfg["cross_attention_dim"], device=dev, dtype=dt),
                "added_time_ids": t.tensor([[6.0, 127.0, 0.02]] * 2, device=dev, dtype=dt),
                "return_dict": False}}


SPECS = {"wan": wan_spec, "sdxl": sdxl_spec, "svd": svd_spec}


# --- the two paths ---------------------------------------------------------------------------
def best_attention(device) -> str:
    if device.type != "cuda":
        return "native"
    if importlib.util.find_spec("flash_attn_interface"):
        return "_flash_3"
    if importlib.util.find_spec("flash_attn"):
        return "flash"
    if importlib.util.find_spec("sageattention"):
        return "sage"
    return "_native_cudnn"


def build(spec: dict, device, dtype):
    import diffusers
    import torch

    cls = getattr(diffusers, spec["cls"])
    with torch.device(device):
        model = cls.from_config(copy.deepcopy(spec["config"]))
    model.to(dtype)
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    if dtype != torch.float32 and keep:  # what from_pretrained does: these stay in float32
        for name, module in model.named_modules():
            if any(part in keep for part in name.split(".")):
                module.to(torch.float32)
    return model.eval().requires_grad_(False)


def optimise(model, spec: dict, device, compile_: bool) -> tuple[object, list[str]]:
    import torch

    notes = []
    if spec["transformer"]:
        backend = best_attention(device)
        try:
            model.set_attention_backend(backend)
            notes.append(f"attention={backend}")
        except (RuntimeError, ValueError, ImportError) as exc:
            notes.append(f"attention {backend} unavailable ({type(exc).__name__})")
    elif spec["cls"] == "UNet2DConditionModel":  # 2-D convolutions only
        model.to(memory_format=torch.channels_last)
        notes.append("channels_last")
    if compile_:
        if spec["transformer"] and hasattr(model, "compile_repeated_blocks"):
            model.compile_repeated_blocks(fullgraph=True)
            notes.append("compile(repeated blocks)")
        else:
            model = torch.compile(model)
            notes.append("compile")
    return model, notes


# --- measuring -----------------------------------------------------------------------------------
def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step(model, spec, inputs):
    for _ in range(spec["passes"]):
        out = model(**inputs)
    return out


def count_flops(model, spec, inputs) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        step(model, spec, inputs)
    return counter.get_total_flops()


def time_step(model, spec, inputs, device, warmup: int, repeats: int) -> tuple[float, float]:
    """(first call seconds, mean seconds per step after warm-up)."""
    import torch

    with torch.inference_mode():
        t0 = time.perf_counter()
        step(model, spec, inputs)
        sync(device)
        first = time.perf_counter() - t0
        for _ in range(max(0, warmup - 1)):
            step(model, spec, inputs)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            step(model, spec, inputs)
        sync(device)
    return first, (time.perf_counter() - t0) / repeats


def peak_memory(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss_kib / 2**20  # process peak RSS, GiB


def peak_tflops(device) -> tuple[str, float | None]:
    import torch

    if device.type != "cuda":
        return "CPU", None
    name = torch.cuda.get_device_name(device)
    for key, value in BF16_PEAK.items():
        if key in name:
            return name, value
    return name, None


def bench_model(key: str, args, device, dtype) -> list[dict]:
    import torch

    spec = SPECS[key](args.size)
    rows, baseline = [], None
    for path in ("plain", "studio"):
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        torch.manual_seed(0)
        model = build(spec, device, dtype)
        inputs = spec["inputs"](torch, device, dtype)
        params = sum(p.numel() for p in model.parameters())
        flops = count_flops(model, spec, inputs) if path == "plain" else rows[0]["flops"]
        notes = ["eager", "attention=native"]
        if path == "studio":
            try:
                model, notes = optimise(model, spec, device, not args.no_compile)
            except Exception as exc:  # a missing compiler must not end the bench
                notes = [f"optimise failed: {type(exc).__name__}: {str(exc)[:80]}"]
        try:
            first, seconds = time_step(model, spec, inputs, device, args.warmup, args.repeats)
        except Exception as exc:
            if path == "plain":
                raise
            rows.append({"model": spec["name"], "path": path, "error": f"{type(exc).__name__}: {str(exc)[:120]}"})
            continue
        baseline = baseline or seconds
        rows.append({"model": spec["name"], "path": path, "size": spec["label"], "params_m": params / 1e6,
                     "flops": flops, "first_s": first, "step_s": seconds, "tflops": flops / seconds / 1e12,
                     "peak_mem_gib": peak_memory(device), "speedup": baseline / seconds,
                     "run_estimate_s": seconds * spec["steps"], "run_steps": spec["steps"], "notes": notes})
        del model
    return rows


def denoise(model, inputs, steps: int, guidance: float = 5.0, cached: bool = False):
    """A short flow-matching Euler loop with CFG (two passes a step), as WanPipeline runs it."""
    import torch

    x = inputs["hidden_states"].clone()
    negative = {**inputs, "encoder_hidden_states": torch.zeros_like(inputs["encoder_hidden_states"])}
    sigmas = torch.linspace(1.0, 0.0, steps + 1, device=x.device)
    ctx = model.cache_context if cached else (lambda name: contextlib.nullcontext())
    with torch.inference_mode():
        for i in range(steps):
            t = (sigmas[i] * 1000).reshape(1)
            with ctx("cond"):
                cond = model(**{**inputs, "hidden_states": x, "timestep": t})[0]
            with ctx("uncond"):
                uncond = model(**{**negative, "hidden_states": x, "timestep": t})[0]
            x = x + (sigmas[i + 1] - sigmas[i]) * (uncond + guidance * (cond - uncond))
    return x.float()


def step_cache_rows(args, device, dtype) -> list[dict]:
    """Wan with diffusers' first-block cache against the uncached loop: time and PSNR."""
    import torch
    from diffusers import FirstBlockCacheConfig

    spec = wan_spec(args.size)
    torch.manual_seed(0)
    model = build(spec, device, dtype)
    inputs = spec["inputs"](torch, device, dtype)
    rows = []
    reference = None
    for label, threshold in [("uncached", None), *((f"fbcache {t:g}", t) for t in args.cache_thresholds)]:
        if threshold is not None:
            if model.is_cache_enabled:
                model.disable_cache()
            model.enable_cache(FirstBlockCacheConfig(threshold=threshold))
        denoise(model, inputs, 2, cached=threshold is not None)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        out = denoise(model, inputs, args.cache_steps, cached=threshold is not None)
        sync(device)
        seconds = time.perf_counter() - t0
        if reference is None:
            reference, base = out, seconds
            psnr = float("inf")
        else:
            mse = torch.mean((out - reference) ** 2).item()
            span = (reference.max() - reference.min()).item()
            psnr = 10 * math.log10(span**2 / mse) if mse > 0 else float("inf")
        rows.append({"model": spec["name"], "variant": label, "steps": args.cache_steps, "seconds": seconds,
                     "speedup": base / seconds, "psnr_db": psnr})
    return rows


def cache_table(rows: list[dict]) -> str:
    head = f"{'model':17} {'variant':14} {'steps':>5} {'seconds':>9} {'speedup':>7} {'PSNR vs uncached':>17}"
    lines = ["step caching (random weights: how often blocks are skipped is not what trained weights give)",
             head, "-" * len(head)]
    for r in rows:
        psnr = "exact" if math.isinf(r["psnr_db"]) else f"{r['psnr_db']:.1f} dB"
        lines.append(f"{r['model']:17} {r['variant']:14} {r['steps']:5d} {r['seconds']:9.3f} "
                     f"{r['speedup']:6.2f}x {psnr:>17}")
    return "\n".join(lines)


def table(rows: list[dict], device_name: str, peak: float | None, args) -> str:
    head = (f"{'model':17} {'path':7} {'size':>14} {'params':>8} {'GFLOP/step':>11} {'s/step':>9} "
            f"{'TFLOP/s':>8} {'%peak':>6} {'peak mem':>9} {'speedup':>7} {'est. run':>12}  notes")
    lines = [f"device: {device_name}; size: {args.size}; bf16 peak: {peak or 'n/a'} TFLOP/s; "
             f"peak mem = {'max CUDA allocated' if peak is not None or device_name != 'CPU' else 'process max RSS'}",
             head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:17} {r['path']:7} failed: {r['error']}")
            continue
        pct = f"{100 * r['tflops'] / peak:5.1f}%" if peak else "  n/a"
        est = f"{r['run_estimate_s']:.2f}s/{r['run_steps']}st"
        lines.append(f"{r['model']:17} {r['path']:7} {r['size']:>14} {r['params_m']:7.1f}M {r['flops'] / 1e9:11.2f} "
                     f"{r['step_s']:9.4f} {r['tflops']:8.3f} {pct:>6} {r['peak_mem_gib']:8.2f}G "
                     f"{r['speedup']:6.2f}x {est:>12}  {', '.join(r['notes'])}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="full" if cuda else "tiny")
    parser.add_argument("--models", default="wan,sdxl,svd", help="comma list of: wan, sdxl, svd")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="studio path without torch.compile")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--cache-steps", type=int, default=0,
                        help="also time Wan over this many CFG steps with first-block caching (0 = skip)")
    parser.add_argument("--cache-thresholds", type=lambda v: [float(x) for x in v.split(",")],
                        default=[0.05, 0.1], help="first-block cache thresholds to try")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    device_name, peak = peak_tflops(device)
    rows = []
    for key in [m.strip() for m in args.models.split(",") if m.strip()]:
        if key not in SPECS:
            parser.error(f"unknown model {key!r}; choose from {', '.join(SPECS)}")
        rows += bench_model(key, args, device, dtype)
    sys.stdout.write(table(rows, device_name, peak, args) + "\n")
    cache = step_cache_rows(args, device, dtype) if args.cache_steps else []
    if cache:
        sys.stdout.write("\n" + cache_table(cache) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"device": device_name, "size": args.size, "bf16_peak": peak,
                                         "rows": rows, "step_cache": cache}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
