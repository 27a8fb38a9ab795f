"""What every diffusers-backed engine shares: finding weights, loading through the warm
cache, seeded generators, and the step callback that reports progress and cancels."""

from __future__ import annotations

from typing import ClassVar

from app.errors import Cancelled, NotAvailable
from engines.base import Engine

from .weights import PipelineCache, find_weights, missing_packages, pick_device


class DiffusersEngine(Engine):
    kind = "local"
    hub_id: ClassVar[str | None] = None
    packages: ClassVar[tuple[str, ...]] = ("torch", "diffusers", "transformers")

    def __init__(self, settings, secrets=None, cache: PipelineCache | None = None):
        super().__init__(settings, secrets)
        self.cache = cache or PipelineCache(int(settings.model_cache.max_size_gb * 2**30))

    # --- availability ---------------------------------------------------------------
    def weights(self):
        return find_weights(self.settings, self.id, self.hub_id)

    def available(self) -> tuple[bool, str]:
        missing = missing_packages(*self.packages)
        if missing:
            return False, (f"Local engines need {', '.join(missing)}: "
                           "pip install -e '.[local]' (and torch for your GPU).")
        info = self.weights()
        if info.path is None:
            hub = f" ({self.hub_id}, diffusers format)" if self.hub_id else ""
            return False, (f"Weights not found. Put the model folder{hub} with its model_index.json in "
                           f"{info.expected}, or set models.{self.id} in config.yaml.")
        return True, f"weights: {info.path} ({info.source})"

    # --- loading --------------------------------------------------------------------
    def load(self, path, device, dtype):
        """Build the pipeline from ``path`` on ``device`` (engines override)."""
        raise NotImplementedError

    def pipeline(self):
        ok, reason = self.available()
        if not ok:
            raise NotAvailable(reason, f"引擎 {self.id} 不可用：{reason}")
        path = self.weights().path
        device, dtype = pick_device()
        key = (self.id, str(path), str(device), str(dtype))
        return self.cache.get(key, lambda: self.load(path, device, dtype)), device

    # --- per-run helpers ------------------------------------------------------------
    @staticmethod
    def generator(seed: int, device):
        import torch

        gen_device = "cpu" if device.type == "mps" else device
        return torch.Generator(device=gen_device).manual_seed(int(seed))

    @staticmethod
    def step_callback(total: int, progress, cancelled):
        """A ``callback_on_step_end`` that reports each step and raises ``Cancelled``.

        Raising (instead of ``pipe._interrupt``) stops before the VAE decode.
        """

        def callback(pipe, step, timestep, kwargs):
            progress(step + 1, total)
            if cancelled():
                raise Cancelled()
            return kwargs

        return callback
