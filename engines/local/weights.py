"""Where a local engine's weights live, and the warm cache of loaded pipelines.

Lookup order for an engine id: ``settings.models[id]`` (a folder), then
``<workspace>/models/<id>/``, then the Hugging Face cache for the engine's hub id. A folder
counts when it holds ``model_index.json`` (diffusers format).
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass
class WeightsInfo:
    path: Path | None
    source: str  # settings | workspace | hf-cache | missing
    expected: Path  # where a user should put the weights


def find_weights(settings, engine_id: str, hub_id: str | None = None) -> WeightsInfo:
    expected = settings.models_dir / engine_id
    configured = settings.models.get(engine_id)
    if configured:
        p = Path(configured).expanduser()
        return WeightsInfo(p if (p / "model_index.json").exists() else None, "settings", p)
    if (expected / "model_index.json").exists():
        return WeightsInfo(expected, "workspace", expected)
    if hub_id:
        cached = _hf_cached(hub_id)
        if cached is not None:
            return WeightsInfo(cached, "hf-cache", expected)
    return WeightsInfo(None, "missing", expected)


def _hf_cached(hub_id: str) -> Path | None:
    if importlib.util.find_spec("huggingface_hub") is None:
        return None
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(hub_id, "model_index.json")
    return Path(hit).parent if isinstance(hit, str) else None


def missing_packages(*names: str) -> list[str]:
    return [n for n in names if importlib.util.find_spec(n) is None]


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pick_device(gpu_id: int | None = None):
    """(device, dtype): CUDA in bf16 when there is one, else CPU in fp32."""
    import torch

    if torch.cuda.is_available():
        return torch.device(f"cuda:{gpu_id or 0}"), torch.bfloat16
    return torch.device("cpu"), torch.float32


def torch_cpu():
    import torch

    return torch.device("cpu")


def pipeline_bytes(pipe) -> int:
    total = 0
    for comp in getattr(pipe, "components", {}).values():
        params = getattr(comp, "parameters", None)
        if callable(params):
            total += sum(p.numel() * p.element_size() for p in params())
    return total


class PipelineCache:
    """Keeps loaded pipelines warm up to ``max_bytes``; least recently used go first."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0  # how many times a loader ran (tests and benchmarks read it)

    def get(self, key, loader: Callable[[], Any]):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            pipe = loader()
            self.loads += 1
            size = pipeline_bytes(pipe)
            if self.max_bytes > 0:
                self._items[key] = (pipe, size)
                self._evict()
            return pipe

    def _evict(self) -> None:
        evicted = False
        while len(self._items) > 1 and sum(s for _, s in self._items.values()) > self.max_bytes:
            self._items.popitem(last=False)
            evicted = True
        if evicted:
            _free_cuda()

    def discard(self, predicate: Callable[[Any], bool]) -> int:
        """Drop the pipelines whose key matches; returns how many."""
        with self._lock:
            gone = [k for k in self._items if predicate(k)]
            for k in gone:
                del self._items[k]
            if gone:
                _free_cuda()
            return len(gone)

    def keys(self) -> list:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            _free_cuda()


def _free_cuda() -> None:
    """Give dropped pipelines' memory back now: diffusers' hook registries keep a denoiser in a
    reference cycle, so without a collection it (and its VRAM) lingers until the cyclic GC runs."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def missing_components(path: Path) -> list[str]:
    """Components named in ``model_index.json`` whose subfolder is absent or empty."""
    import json

    try:
        index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["model_index.json"]
    missing = []
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        sub = path / name
        if not sub.is_dir() or not any(sub.iterdir()):
            missing.append(name)
    return missing


def models_report(engines: dict) -> list[dict]:
    """One row per local engine for the Settings "Models" section: present or not, where, how
    big, what is missing, and what to do. An engine whose folder is not in diffusers format says
    what it lacks through ``missing_files() -> [name]``. An engine may add rows for extra parts through
    ``extra_models() -> [(name, path, present)]`` (InstantID files, face models, LoRAs)."""
    rows = []
    for engine in engines.values():
        if engine.kind != "local" or not hasattr(engine, "weights"):
            continue
        ok, reason = engine.available()
        info = engine.weights()
        if hasattr(engine, "missing_files"):  # not a diffusers folder (local-tts): the engine knows its files
            missing = list(engine.missing_files())
        else:
            missing = missing_components(info.path) if info.path else ["model_index.json"]
        parts = []
        for name, path, present in getattr(engine, "extra_models", lambda: [])():
            size = folder_size(path) if present and path.is_dir() else (path.stat().st_size if present else 0)
            parts.append({"name": name, "path": str(path), "present": present, "size_bytes": size})
            if not present:
                missing.append(name)
        size = folder_size(info.path) if info.path else 0
        rows.append({
            "engine": engine.id, "title": engine.title, "available": ok, "reason": reason,
            "present": info.path is not None and not missing, "source": info.source,
            "path": str(info.path) if info.path else None, "expected": str(info.expected),
            "hub_id": getattr(engine, "hub_id", None), "size_bytes": size + sum(p["size_bytes"] for p in parts),
            "missing": missing, "parts": parts})
    return rows
