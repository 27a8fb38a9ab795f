"""A job as a card people can read (prompt, engine, seed, size, timings, cost, parent episode),
used by the Queue and the Gallery; the raw JSON stays one click away in a "details" toggle."""

from __future__ import annotations

import html

from .i18n import word

LABELS = {  # key: (English, 中文)
    "task": ("Task", "任务"), "engine": ("Engine", "引擎"), "status": ("Status", "状态"),
    "prompt": ("Prompt", "提示词"), "negative": ("Negative prompt", "反向提示词"), "seed": ("Seed", "种子"),
    "size": ("Size", "尺寸"), "frames": ("Frames", "帧数"), "duration": ("Duration", "时长"),
    "queued": ("Waited", "排队"), "ran": ("Ran", "运行"), "cost": ("Estimated cost", "预估费用"),
    "episode": ("Episode", "所属剧集"), "error": ("Error", "错误"), "created": ("Created", "创建时间"),
}


def _label(key: str, zh: bool) -> str:
    return LABELS[key][1 if zh else 0]


def _secs(value: float, zh: bool) -> str:
    if value < 90:
        return f"{value:.1f} 秒" if zh else f"{value:.1f} s"
    return f"{value / 60:.1f} 分钟" if zh else f"{value / 60:.1f} min"


def card_markdown(status: dict, lang: str) -> str:
    """``status``: JobService.status_dict(job)."""
    zh = lang == "zh"
    p = status.get("params") or {}
    rows = [("task", f"`{status['task_id']}`"), ("engine", f"`{status['engine']}`"),
            ("status", f"{word(status['status'], lang)} · {status.get('progress', 0):.0f}%")]
    if status.get("prompt") or p.get("text"):
        rows.append(("prompt", html.escape(status.get("prompt") or p.get("text") or "")))
    if status.get("negative_prompt"):
        rows.append(("negative", html.escape(status["negative_prompt"])))
    if p.get("seed") is not None:
        rows.append(("seed", f"`{p['seed']}`"))
    if p.get("width") and p.get("height"):
        rows.append(("size", f"{p['width']} × {p['height']}"))
    elif p.get("resolution") or p.get("size"):
        rows.append(("size", html.escape(str(p.get("size") or p.get("resolution")))))
    if p.get("num_frames"):
        fps = p.get("fps")
        extra = f" · {p['num_frames'] / fps:.1f} {'秒' if zh else 's'}" if fps else ""
        rows.append(("frames", f"{p['num_frames']}{extra}"))
    elif p.get("duration"):
        rows.append(("duration", f"{p['duration']} {'秒' if zh else 's'}"))
    timings = status.get("timings") or {}
    if "queued_s" in timings:
        rows.append(("queued", _secs(timings["queued_s"], zh)))
    if "run_s" in timings:
        rows.append(("ran", _secs(timings["run_s"], zh)))
    if status.get("kind") == "cloud":
        from app.usage import estimate_of

        cny = estimate_of(status["engine"], p)
        if cny is not None:
            rows.append(("cost", f"约 ¥{cny:.2f}" if zh else f"about ¥{cny:.2f}"))
    if status.get("parent"):
        rows.append(("episode", f"`{status['parent']}`"))
    error = status.get("error_zh") if zh and status.get("error_zh") else status.get("error")
    if error:
        rows.append(("error", html.escape(str(error))))
    rows.append(("created", status.get("created_at") or ""))
    return "\n".join(f"- **{_label(k, zh)}:** {v}" for k, v in rows)
