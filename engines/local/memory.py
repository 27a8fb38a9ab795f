"""Low-VRAM modes shared by the local engines: offload, VAE slicing/tiling, attention backend,
the automatic choice from free VRAM, and one retry with more offload after a CUDA OOM.

``offload`` modes, least to most memory saved (and slowest last):

``none``        the whole pipeline on the GPU.
``model``       each component moves to the GPU only while it runs (diffusers model CPU offload).
``group``       the denoiser's layers stream to the GPU in groups, overlapped with compute.
``sequential``  every layer streams on its own (smallest footprint, much slower).

``auto`` picks the first that fits the free VRAM, from the size of the weights on disk.
On a CPU there is nothing to offload to: every mode runs as ``none``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from core.errors import EngineError, ValidationError
from engines.base import Params

log = logging.getLogger(__name__)

Offload = Literal["auto", "none", "model", "group", "sequential"]
Attention = Literal["auto", "sdpa", "flash", "sage", "xformers"]
STRONGER = {"none": "model", "model": "group", "group": "sequential", "sequential": None}
GiB = 2**30
DENOISERS = ("transformer", "transformer_2", "unet", "controlnet")
_DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1}


class LowVramParams(Params):
    """Memory fields every local engine's ``Params`` inherits."""

    offload: Offload = Field("auto", description="GPU memory mode: auto (from free VRAM), none, model, group "
                                                 "or sequential CPU offload (less VRAM, slower)")
    vae_tiling: bool | None = Field(None, description="Decode the VAE in tiles/slices (less VRAM); "
                                                      "unset (auto) = on when offloading")
    attention: Attention = Field("auto", description="Attention kernel: auto, sdpa (PyTorch), flash "
                                                     "(flash-attn), sage (SageAttention), xformers")


@dataclass(frozen=True)
class MemoryPlan:
    offload: str  # none | model | group | sequential
    vae_tiling: bool
    attention: str  # sdpa | flash | sage | xformers
    reason: str
    device: str = "cpu"  # the card (cuda:N) the worker that ran it owns

    def as_info(self) -> dict:
        return {"device": self.device, "offload": self.offload, "vae_tiling": self.vae_tiling,
                "attention": self.attention, "memory_reason": self.reason}


# --- sizing -------------------------------------------------------------------------------
def weight_params(path: Path) -> tuple[int, int]:
    """(parameters in *.safetensors under ``path``, bytes of other weight files)."""
    params, other = 0, 0
    for f in Path(path).rglob("*"):
        if f.suffix == ".safetensors":
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n))
            for name, t in header.items():
                if name != "__metadata__":
                    count = 1
                    for dim in t["shape"]:
                        count *= dim
                    params += count
        elif f.suffix in (".bin", ".pt", ".pth", ".ckpt", ".onnx"):
            other += f.stat().st_size
    return params, other


def needed_bytes(path: Path, dtype_bytes: int) -> int:
    params, other = weight_params(path)
    return params * dtype_bytes + other


def free_vram(device) -> int | None:
    import torch

    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


# --- choosing ------------------------------------------------------------------------------
def plan_memory(offload: str, device_type: str, need_bytes: int, free_bytes: int | None,
                vae_tiling: bool | None = None, attention: str = "auto", transformer: bool = False) -> MemoryPlan:
    """Decide the modes for one run. Pure: everything it needs comes in as arguments."""
    if device_type != "cuda":
        mode, reason = "none", f"{device_type}: no GPU memory to save"
    elif offload != "auto":
        mode, reason = offload, "chosen in the job's parameters"
    elif free_bytes is None:
        mode, reason = "none", "free VRAM unknown"
    else:
        headroom = max(2 * GiB, need_bytes // 5)  # activations, VAE decode, CUDA context
        need_g, free_g = need_bytes / GiB, free_bytes / GiB
        if need_bytes + headroom <= free_bytes:
            mode = "none"
        elif need_bytes * 0.7 + headroom <= free_bytes:  # the denoiser alone fits
            mode = "model"
        else:
            mode = "group"
        reason = f"auto: weights {need_g:.1f} GiB, free VRAM {free_g:.1f} GiB"
    tiling = vae_tiling if vae_tiling is not None else mode != "none"
    return MemoryPlan(mode, tiling, pick_attention(attention, device_type, transformer), reason)


def pick_attention(choice: str, device_type: str, transformer: bool) -> str:
    if choice == "auto":
        if device_type != "cuda":
            return "sdpa"
        if transformer and _has("flash_attn"):
            return "flash"
        if transformer and _has("sageattention"):
            return "sage"
        return "sdpa"
    need = {"flash": "flash_attn", "sage": "sageattention", "xformers": "xformers"}.get(choice)
    if need and not _has(need):
        raise ValidationError(f"attention={choice} needs the '{need}' package: pip install {need}, "
                              "or use attention=auto.",
                              f"attention={choice} 需要安装 {need}（pip install {need}），或改用 auto。")
    if choice in ("flash", "sage") and device_type != "cuda":
        raise ValidationError(f"attention={choice} runs only on an NVIDIA GPU; use attention=auto.",
                              f"attention={choice} 只能在 NVIDIA GPU 上运行，请改用 auto。")
    if choice == "sage" and not transformer:
        raise ValidationError("attention=sage works with the transformer engines (Wan); use sdpa here.",
                              "attention=sage 仅支持 Transformer 引擎（Wan），此处请用 sdpa。")
    return choice


def _has(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# --- applying ------------------------------------------------------------------------------
def place(pipe, plan: MemoryPlan, device):
    """Put a freshly loaded pipeline (on the CPU when offloading) on its device per ``plan``."""
    if device.type == "cpu" or plan.offload == "none":
        pipe.to(device)
    elif plan.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif plan.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:  # group: the denoisers stream block groups; the rest go through model offload hooks
        for name in DENOISERS:
            model = getattr(pipe, name, None)
            if model is not None and hasattr(model, "enable_group_offload"):
                model.enable_group_offload(onload_device=device, offload_type="block_level",
                                           num_blocks_per_group=1, use_stream=True)
        for name, comp in pipe.components.items():
            if name not in DENOISERS and hasattr(comp, "to") and hasattr(comp, "parameters"):
                comp.to(device)
    _set_attention(pipe, plan.attention)
    pipe._studio_lock = threading.Lock()  # one run at a time on a cached pipeline (workers sharing a card)
    return pipe


def _set_attention(pipe, attention: str) -> None:
    backend = {"sdpa": "native", "flash": "flash", "sage": "sage", "xformers": "xformers"}[attention]
    for name in DENOISERS:
        model = getattr(pipe, name, None)
        if model is None:
            continue
        if name.startswith("transformer") and hasattr(model, "set_attention_backend"):
            model.set_attention_backend(backend)
        elif attention == "xformers" and hasattr(model, "enable_xformers_memory_efficient_attention"):
            model.enable_xformers_memory_efficient_attention()


def apply_run_modes(pipe, plan: MemoryPlan) -> None:
    """Per-run switches that do not need a reload: VAE tiling and slicing."""
    vae = getattr(pipe, "vae", None)
    for on, off in (("enable_tiling", "disable_tiling"), ("enable_slicing", "disable_slicing")):
        fn = getattr(vae, on if plan.vae_tiling else off, None)
        if callable(fn):
            fn()


@contextlib.contextmanager
def attention_context(plan: MemoryPlan, device):
    """UNet engines pick torch's flash kernel for SDPA inside this block when asked."""
    if plan.attention == "flash" and device.type == "cuda":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            yield
    else:
        yield


# --- out of memory -------------------------------------------------------------------------
def is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_memory(cache) -> None:
    import gc

    import torch

    cache.clear()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_with_retry(engine, params, call):
    """``call(pipe, device)`` on the engine's pipeline; after a CUDA OOM, free the cache and
    run once more with the next stronger offload mode. A second OOM fails with advice."""
    pipe, device = engine.pipeline(params)
    plan = engine.last_plan
    for attempt in (1, 2):
        try:
            with getattr(pipe, "_studio_lock", None) or contextlib.nullcontext(), attention_context(plan, device):
                return call(pipe, device)
        except Exception as exc:
            if not is_oom(exc):
                raise
            pipe = None
            free_memory(engine.cache)
            stronger = STRONGER.get(plan.offload)
            if attempt == 2 or stronger is None:
                raise EngineError(
                    f"The GPU ran out of memory (offload={plan.offload}). Lower the size or frame count, "
                    "or choose offload=sequential; close other programs using the GPU.",
                    f"显存不足（offload={plan.offload}）。请降低分辨率或帧数，或选择 offload=sequential，"
                    "并关闭其他占用显卡的程序。") from exc
            log.warning("%s: CUDA out of memory with offload=%s; retrying with offload=%s",
                        engine.id, plan.offload, stronger)
            pipe, device = engine.pipeline(params, offload=stronger)
            plan = engine.last_plan
        finally:
            if pipe is not None and hasattr(pipe, "maybe_free_model_hooks"):
                pipe.maybe_free_model_hooks()
    raise AssertionError("unreachable")
