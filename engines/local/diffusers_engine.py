"""What every diffusers-backed engine shares: finding weights, loading through the warm
cache, seeded generators, and the step callback that reports progress and cancels."""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import ClassVar

from core.errors import Cancelled, NotAvailable
from engines.base import Engine, Reason, reason_text

from . import memory
from .devices import DevicePool
from .limits import Budget, check_budget
from .weights import (
    PipelineCache,
    find_weights,
    missing_packages,
    pick_device,
    torch_cpu,
)


class DiffusersEngine(Engine):
    kind = "local"
    hub_id: ClassVar[str | None] = None
    packages: ClassVar[tuple[str, ...]] = ("torch", "diffusers", "transformers")
    transformer_based: ClassVar[bool] = False  # a DiT denoiser: attention backends apply to it
    budget: ClassVar[Budget | None] = None  # most pixels × frames (or images) one run may ask for

    def __init__(self, settings, secrets=None, cache: PipelineCache | None = None,
                 devices: DevicePool | None = None):
        super().__init__(settings, secrets)
        self.cache = cache or PipelineCache(int(settings.model_cache.max_size_gb * 2**30))
        self.devices = devices or DevicePool.from_settings(settings)
        self._local = threading.local()  # per worker thread: two workers may run one engine at once

    @property
    def last_plan(self) -> memory.MemoryPlan | None:
        """The memory plan of this thread's latest ``pipeline()`` call."""
        return getattr(self._local, "plan", None)

    @last_plan.setter
    def last_plan(self, plan: memory.MemoryPlan | None) -> None:
        self._local.plan = plan

    # --- availability ---------------------------------------------------------------
    def weights(self):
        return find_weights(self.settings, self.id, self.hub_id)

    def available(self) -> tuple[bool, str]:
        missing = missing_packages(*self.packages)
        if missing:
            if getattr(sys, "frozen", False):
                return False, Reason("This is the lite (cloud-only) bundle: use the full bundle for local engines.",
                                     "这是精简版（仅云端）安装包：本地引擎请使用完整版安装包。")
            return False, Reason(f"Local engines need {', '.join(missing)}: "
                                 "pip install -e '.[local]' (and torch for your GPU).",
                                 f"本地引擎需要 {', '.join(missing)}：pip install -e '.[local]'（以及适合你显卡的 torch）。")
        info = self.weights()
        if info.path is None:
            hub = f" ({self.hub_id}, diffusers format)" if self.hub_id else ""
            hub_zh = f"（{self.hub_id}，diffusers 格式）" if self.hub_id else ""
            return False, Reason(f"Weights not found. Put the model folder{hub} with its model_index.json in "
                                 f"{info.expected}, or set models.{self.id} in config.yaml, or Download it in "
                                 "Settings → Models.",
                                 f"找不到权重。请把模型文件夹{hub_zh}（含 model_index.json）放到 {info.expected}，"
                                 f"或在 config.yaml 中设置 models.{self.id}，或在“设置 → 模型”中下载。")
        return True, Reason(f"weights: {info.path} ({info.source})", f"权重：{info.path}（{info.source}）")

    def check(self, request) -> None:
        """The run-size budget (``limits.py``); engines with more rules call this first."""
        check_budget(self.id, self.budget, request.params)

    # --- loading --------------------------------------------------------------------
    def load(self, path, device, dtype):
        """Build the pipeline from ``path`` on ``device`` (engines override)."""
        raise NotImplementedError

    def pipeline(self, params=None, offload: str | None = None):
        """The warm pipeline and its device, placed per the memory plan (see ``memory.py``).

        ``offload`` overrides the plan's mode (the OOM retry uses it). The plan is kept in
        ``self.last_plan`` (per worker thread); a pipeline loaded under another offload mode is
        dropped first.
        """
        path, device, dtype = self.placement()
        plan = self.memory_plan(params, path, device, dtype, offload,
                                resident=self.resident_mode(self.id, path, device, dtype))
        self.last_plan = plan
        pipe = self.warm(self.id, path, device, dtype, plan, self.load)
        memory.apply_run_modes(pipe, plan)
        return pipe, device

    def placement(self):
        """(weights folder, device this worker owns, dtype); ``NotAvailable`` when it can't run."""
        ok, reason = self.available()
        if not ok:
            raise NotAvailable(reason, f"引擎 {self.id} 不可用：{reason_text(reason, 'zh')}")
        device, dtype = pick_device(self.devices.current())
        return self.weights().path, device, dtype

    @staticmethod
    def cache_key(name: str, path, device, dtype) -> tuple:
        return (name, str(path), str(device), str(dtype))

    def resident_mode(self, name: str, path, device, dtype) -> str | None:
        """The offload mode ``name``'s pipeline is already loaded under on this device, if any."""
        key = self.cache_key(name, path, device, dtype)
        return next((k[4] for k in self.cache.keys() if k[:4] == key), None)

    def warm(self, name: str, path, device, dtype, plan, loader):
        """``loader(path, device, dtype)``'s result from the cache, loaded and placed on a miss."""
        key = self.cache_key(name, path, device, dtype)
        self.cache.discard(lambda k: k[:4] == key and k[4:] != (plan.offload,))
        load_device = device if plan.offload == "none" else torch_cpu()
        return self.cache.get((*key, plan.offload),
                              lambda: memory.place(loader(path, load_device, dtype), plan, device))

    def memory_plan(self, params, path, device, dtype, offload: str | None = None, resident: str | None = None):
        """``resident``: the mode a warm copy is loaded under. Under ``auto`` it is kept: the
        free VRAM no longer counts its weights, and reloading would throw the warm copy away."""
        requested = offload or getattr(params, "offload", "auto")
        keep = requested == "auto" and resident is not None
        if keep:
            requested = resident
        free = memory.free_vram(device)
        need = self.needed_bytes(path, dtype) if free is not None and requested == "auto" else 0
        plan = memory.plan_memory(requested, device.type, need, free, getattr(params, "vae_tiling", None),
                                  getattr(params, "attention", "auto"), transformer=self.transformer_based)
        reason = f"auto: already loaded with offload={resident}" if keep and device.type == "cuda" else plan.reason
        return dataclasses.replace(plan, device=str(device), reason=reason)

    def needed_bytes(self, path, dtype) -> int:
        return memory.needed_bytes(path, dtype.itemsize)

    def generate(self, params, call):
        """``call(pipe, device)`` on the warm pipeline; one retry with more offload after a CUDA OOM."""
        return memory.run_with_retry(self, params, call)

    # --- per-run helpers ------------------------------------------------------------
    @staticmethod
    def generator(seed: int, device):
        import torch

        gen_device = "cpu" if device.type == "mps" else device
        return torch.Generator(device=gen_device).manual_seed(int(seed))

    @staticmethod
    def step_callback(total: int, progress, cancelled, workdir=None, layout: str = "bchw"):
        """A ``callback_on_step_end`` that reports each step and raises ``Cancelled``; with a
        ``workdir`` it also writes a low-resolution preview every few steps (engines/local/preview.py)
        and passes its path as ``progress(step, total, preview=path)``.

        Raising (instead of ``pipe._interrupt``) stops before the VAE decode.
        """
        from .preview import Previewer

        previewer = Previewer(workdir, layout, total) if workdir is not None else None

        def callback(pipe, step, timestep, kwargs):
            shown = previewer.maybe(step + 1, kwargs.get("latents")) if previewer is not None else None
            if shown is not None:
                progress(step + 1, total, shown)  # positional: the contract is progress(step, total, preview)
            else:
                progress(step + 1, total)
            if cancelled():
                if previewer is not None:
                    previewer.discard()  # a cancelled run leaves nothing behind
                raise Cancelled()
            return kwargs

        return callback
