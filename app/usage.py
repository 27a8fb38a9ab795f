"""The usage ledger: what the cloud vendors said each finished job used, summed per day and provider.

Read from the job table (succeeded cloud jobs; a job's vendor answer lives in ``Job.info``),
never kept anywhere else. Each engine reports usage in its vendor's own words; ``METRICS``
maps them onto three comparable measures:

``seconds``   seconds of video generated (DashScope ``usage.video_duration``, Tencent
              ``Usage.OutputSeconds``, Ark's task ``duration``)
``tokens``    tokens billed (Ark ``usage.total_tokens``; Zhipu ``usage.total_tokens`` when given)
``count``     videos delivered (DashScope ``usage.video_count``; elsewhere the result URLs), or
              speech clips (``dashscope-tts``, ``tencent-tts``: their characters are under ``raw``),
              or drafts (the ``*-script`` engines: ``tokens`` sums prompt and completion tokens)

The vendor's own numeric usage fields are summed as they are under ``raw``. A day is the
local calendar day the job finished on.

Each row also carries ``estimate_cny``: the price-file estimate (app.estimate) for the same jobs.

``ledger(filters) -> {since, until, rows, totals}``  filters: ``days`` (default 30, today
included), ``engine`` (an id or a list of ids).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable

from .db import Job
from core.errors import ValidationError

FILTER_KEYS = {"days", "engine"}
DEFAULT_DAYS = 30
MAX_DAYS = 3660


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _usage(info: dict) -> dict:
    usage = info.get("usage")
    return usage if isinstance(usage, dict) else {}


def _urls(info: dict) -> float | None:
    urls = info.get("video_urls")
    return float(len(urls)) if isinstance(urls, list) and urls else None


def _dashscope(info: dict) -> dict:
    u = _usage(info)
    return {"seconds": _num(u.get("video_duration")) or _num(info.get("video_seconds")),
            "count": _num(u.get("video_count"))}


def _tencent(info: dict) -> dict:
    u = _usage(info)
    return {"seconds": _num(u.get("OutputSeconds")) or _num(info.get("video_seconds")), "count": _urls(info)}


def _ark(info: dict) -> dict:
    u = _usage(info)
    duration = _num(info.get("duration"))
    return {"tokens": _num(u.get("total_tokens")) or _num(u.get("completion_tokens")),
            "seconds": duration if duration and duration > 0 else None, "count": _urls(info)}


def _zhipu(info: dict) -> dict:
    u = _usage(info)
    return {"tokens": _num(u.get("total_tokens")), "count": _urls(info)}


def _speech(info: dict) -> dict:
    """Speech: ``tokens`` when the vendor bills them (DashScope Qwen-TTS), one ``count`` per clip;
    the characters the vendor reports (or the studio counted) stay under ``raw``."""
    u = _usage(info)
    return {"tokens": _num(u.get("total_tokens")), "count": 1.0}


def _script(info: dict) -> dict:
    """Script drafting (an LLM): the tokens of every call, one ``count`` per draft."""
    u = _usage(info)
    total = _num(u.get("total_tokens"))
    if total is None and (_num(u.get("prompt_tokens")) or _num(u.get("completion_tokens"))):
        total = (_num(u.get("prompt_tokens")) or 0.0) + (_num(u.get("completion_tokens")) or 0.0)
    return {"tokens": total, "count": 1.0}


METRICS: dict[str, Callable[[dict], dict]] = {
    "dashscope-script": _script,
    "zhipu-script": _script,
    "ark-script": _script,
    "llm-script": _script,
    "dashscope-tts": _speech,
    "tencent-tts": _speech,
    "dashscope": _dashscope,
    "tencent-vod": _tencent,
    "ark": _ark,
    "zhipu": _zhipu,
}


def job_usage(engine: str, info: dict, outputs: list | None = None) -> dict:
    """One job's ``{seconds, tokens, count, raw}``; a measure the vendor did not report is 0."""
    info = info if isinstance(info, dict) else {}
    mapped = METRICS.get(engine, lambda i: {"seconds": _num(i.get("video_seconds")),
                                            "tokens": _num(i.get("usage_tokens"))})(info)
    count = mapped.get("count")
    if count is None:
        count = float(sum(1 for o in outputs or [] if isinstance(o, dict) and o.get("kind") in ("video", "audio")))
    raw = {k: v for k, v in _usage(info).items() if _num(v) is not None}
    return {"seconds": mapped.get("seconds") or 0.0, "tokens": mapped.get("tokens") or 0.0,
            "count": count, "raw": raw}


def estimate_of(engine_id: str, params) -> float | None:
    """The price-file estimate (CNY) for a job's stored parameters, next to what the vendor reported."""
    from engines.registry import ENGINE_CLASSES

    from .estimate import cost

    cls = next((c for c in ENGINE_CLASSES if c.id == engine_id), None)
    try:
        return cost(cls, params if isinstance(params, dict) else {}) if cls is not None else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(ts))


def _clean(value: float):
    return int(value) if float(value).is_integer() else round(value, 3)


def parse_filters(filters: dict | None) -> tuple[int, list[str]]:
    filters = dict(filters or {})
    unknown = set(filters) - FILTER_KEYS
    if unknown:
        raise ValidationError(f"Unknown usage filter(s): {', '.join(sorted(unknown))}. Use: days, engine.",
                              f"未知的用量筛选条件：{', '.join(sorted(unknown))}。可用：days、engine。")
    days = filters.get("days")
    try:
        days = DEFAULT_DAYS if days in (None, "") else int(days)
    except (TypeError, ValueError) as exc:
        raise ValidationError("days must be a whole number of days.", "days 必须是整数天数。") from exc
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be between 1 and {MAX_DAYS}.", f"days 必须在 1 到 {MAX_DAYS} 之间。")
    engine = filters.get("engine")
    if engine is None:
        engines = []
    elif isinstance(engine, str):
        engines = [engine]
    elif isinstance(engine, list) and all(isinstance(e, str) for e in engine):
        engines = engine
    else:
        raise ValidationError("engine must be an engine id or a list of them.",
                              "engine 必须是引擎 ID 或其列表。")
    return days, [e.strip() for e in engines if e.strip()]


def ledger(filters: dict | None = None, *, user: str | None = None, now: float | None = None) -> dict:
    """Usage summed per (day, engine), newest day first, plus per-engine totals; ``user`` limits
    it to that user's jobs (a non-admin API key sees only its own)."""
    days, engines = parse_filters(filters)
    now = time.time() if now is None else now
    today = time.localtime(now)
    since = time.mktime((today.tm_year, today.tm_mon, today.tm_mday - (days - 1), 0, 0, 0, 0, 0, -1))
    query = (Job.select(Job.engine, Job.info, Job.outputs, Job.finished_at, Job.params)
             .where(Job.kind == "cloud", Job.status == "succeeded", Job.finished_at >= since))
    if engines:
        query = query.where(Job.engine.in_(engines))
    if user is not None:
        query = query.where(Job.user == user)
    cells: dict[tuple[str, str], dict] = defaultdict(lambda: {"jobs": 0, "seconds": 0.0, "tokens": 0.0,
                                                              "count": 0.0, "raw": defaultdict(float),
                                                              "estimate_cny": 0.0})
    for job in query.tuples().iterator():
        engine, info, outputs, finished, params = job
        used = job_usage(engine, info, outputs)
        guess = estimate_of(engine, params)
        for key in ((_day(finished), engine), ("", engine)):  # "" collects the engine's total
            cell = cells[key]
            cell["jobs"] += 1
            for measure in ("seconds", "tokens", "count"):
                cell[measure] += used[measure]
            cell["estimate_cny"] += guess or 0.0
            for name, value in used["raw"].items():
                cell["raw"][name] += value

    def row(cell: dict, **head) -> dict:
        return {**head, "jobs": cell["jobs"], **{m: _clean(cell[m]) for m in ("seconds", "tokens", "count")},
                "raw": {k: _clean(v) for k, v in sorted(cell["raw"].items())},
                "estimate_cny": round(cell["estimate_cny"], 2)}

    rows = [row(c, day=d, engine=e) for (d, e), c in cells.items() if d]
    rows.sort(key=lambda r: r["engine"])
    rows.sort(key=lambda r: r["day"], reverse=True)
    totals = [row(c, engine=e) for (d, e), c in sorted(cells.items()) if not d]
    return {"since": _day(since), "until": _day(now), "days": days, "rows": rows, "totals": totals}
