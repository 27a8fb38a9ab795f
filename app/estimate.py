"""Estimates before spending: money for cloud engines, time for local ones.

``cost(engine, params)``: CNY from the vendor's price file (``engines/cloud/prices/<vendor>.yaml``,
one small file per vendor with the date and source of each figure), or None when the model
has no price there. ``local_seconds(engine_id, params)``: the median run time of this machine's
finished jobs with the same engine and size (width × height × frames), or None for a first run.
``estimate(...)`` returns both with a line for people in either language.
"""

from __future__ import annotations

import functools
import statistics
from pathlib import Path

import yaml

HISTORY = 200  # finished jobs looked at, newest first


@functools.lru_cache(maxsize=16)
def price_table(vendor: str) -> dict:
    import engines.cloud

    path = Path(engines.cloud.__file__).resolve().parent / "prices" / f"{vendor}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


def cost(engine, params: dict) -> float | None:
    """CNY for one video with ``params`` (the model's default duration 5 s when unset)."""
    model_field = engine.Params.model_fields.get("model")
    model = params.get("model") or (model_field.default if model_field is not None else None)
    row = (price_table(engine.id).get("models") or {}).get(model)
    if not row:
        return None
    tier = str(params.get("resolution") or row.get("default_resolution") or "").upper()
    per = row["per_second"].get(tier)
    if per is None:
        return None
    return round(per * float(params.get("duration") or 5), 2)


def size_key(params: dict) -> tuple:
    return params.get("width"), params.get("height"), params.get("num_frames")


def local_seconds(engine_id: str, params: dict) -> float | None:
    from .db import Job

    rows = (Job.select(Job.params, Job.started_at, Job.finished_at)
            .where((Job.engine == engine_id) & (Job.status == "succeeded") & Job.started_at.is_null(False)
                   & Job.finished_at.is_null(False))
            .order_by(Job.finished_at.desc()).limit(HISTORY))
    want = size_key(params)
    times = [r.finished_at - r.started_at for r in rows if size_key(r.params or {}) == want]
    return statistics.median(times) if times else None


def duration_text(seconds: float, zh: bool) -> str:
    """Seconds as people read them: "40 s" / "2.5 min" (or in Chinese)."""
    if seconds < 90:
        return f"{seconds:.0f} 秒" if zh else f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} 分钟" if zh else f"{seconds / 60:.1f} min"


def estimate(engine, params: dict, lang: str = "en") -> dict:
    """``{"cny", "seconds", "text"}`` for the form (params: the engine's defaults merged in)."""
    zh = lang == "zh"
    full = {n: f.default for n, f in engine.Params.model_fields.items() if not f.is_required()}
    full.update({k: v for k, v in params.items() if v is not None})
    if engine.kind == "cloud":
        cny = cost(engine, full)
        text = (f"约 ¥{cny:.2f}" if zh else f"about ¥{cny:.2f}") if cny is not None else \
            ("暂无此模型的价格表" if zh else "no price table for this model")
        return {"cny": cny, "seconds": None, "text": text}
    seconds = local_seconds(engine.id, full)
    text = (f"预计约 {duration_text(seconds, zh)}（本机同尺寸任务的中位数）" if zh else
            f"about {duration_text(seconds, zh)} (median of this machine's runs at this size)") if seconds is not None \
        else ("本机首次运行此尺寸" if zh else "first run on this machine at this size")
    return {"cny": None, "seconds": seconds, "text": text}
