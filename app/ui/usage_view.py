"""Settings → Cloud usage: seconds of video, tokens and videos the vendors reported, per day × provider.

``build(service, t)`` creates the components inside the current Blocks and returns
``(load, outputs)`` like the other settings sections. The numbers come from ``app.usage``
(the job table); nothing is kept here.
"""

from __future__ import annotations

import html

import gradio as gr

from app.usage import DEFAULT_DAYS, ledger

from app.access import caller

from .api import on
from .i18n import lang_of

DAY_CHOICES = (7, 30, 90, 365)


def cell_text(cell: dict | None, zh: bool) -> str:
    if not cell:
        return "—"
    parts = []
    if cell["seconds"]:
        parts.append(f"{cell['seconds']} 秒" if zh else f"{cell['seconds']} s")
    if cell["tokens"]:
        parts.append(f"{cell['tokens']:,} 词元" if zh else f"{cell['tokens']:,} tokens")
    if cell["count"]:
        plural = "s" if cell["count"] != 1 else ""
        parts.append(f"{cell['count']} 个视频" if zh else f"{cell['count']} video{plural}")
    if cell.get("estimate_cny"):
        parts.append(f"预估 ¥{cell['estimate_cny']:.2f}" if zh else f"estimated ¥{cell['estimate_cny']:.2f}")
    return " · ".join(parts) or (f"{cell['jobs']} 个任务" if zh else f"{cell['jobs']} jobs")


def usage_markdown(data: dict, lang: str) -> str:
    """Rows are days (newest first), columns providers, the last row the totals."""
    zh = lang == "zh"
    period = f"{data['since']} — {data['until']}"
    if not data["rows"]:
        return (f"{period}：还没有已完成的云端任务。" if zh else f"{period}: no finished cloud jobs yet.")
    engines = [t["engine"] for t in data["totals"]]
    by_cell = {(r["day"], r["engine"]): r for r in data["rows"]}
    days = sorted({r["day"] for r in data["rows"]}, reverse=True)
    head = ["日期" if zh else "Day", *(f"`{html.escape(e)}`" for e in engines)]
    lines = [f"{period}（按服务商报告的用量）" if zh else f"{period} (as the providers reported it)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for day in days:
        lines.append("| " + " | ".join([day, *(cell_text(by_cell.get((day, e)), zh) for e in engines)]) + " |")
    totals = {t["engine"]: t for t in data["totals"]}
    lines.append("| " + " | ".join(["**合计**" if zh else "**Total**",
                                     *(f"**{cell_text(totals[e], zh)}**" for e in engines)]) + " |")
    return "\n".join(lines)


def build(service, t):
    gr.Markdown(t("h_usage"))
    with gr.Row():
        days = gr.Dropdown(list(DAY_CHOICES), value=DEFAULT_DAYS, label=t("days"), scale=1)
        refresh = gr.Button(t("refresh"), scale=1)
    table = gr.Markdown(elem_id="usage-table")

    @on("user")
    def show(n_days, request: gr.Request = None):
        principal = caller(request)
        return usage_markdown(ledger({"days": n_days or DEFAULT_DAYS}, user=None if principal.admin else principal.user),
                              lang_of(request))

    @on("user")
    def load(request: gr.Request = None):
        return DEFAULT_DAYS, show(DEFAULT_DAYS, request=request)

    refresh.click(show, days, table, api_visibility="private")
    days.input(show, days, table, api_visibility="private")
    return load, [days, table]
