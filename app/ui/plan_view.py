"""Projects → Render: the episode's plan before it runs — each step (reused, new, or waiting for
another step), its engine and estimate, and the totals — in the caller's language.

``plan_html(preview, lang)``   the table for ``app.episode_estimate.preview``'s answer
``build(episodes, project, only)``  the box in the Render tab, refreshed when the project or the
                               scene choice changes, and its ``/plan_episode`` endpoint
"""

from __future__ import annotations

import html

import gradio as gr

from app.access import caller
from app.episode_estimate import preview
from app.estimate import duration_text
from core.errors import AppError

from .api import on, one_at_a_time
from .i18n import lang_of
from .project_texts import plan_note, step_name

STATES = {"cached": ("reused", "沿用"), "new": ("renders", "渲染"), "after": ("renders", "渲染"),
          "shared": ("shared", "共用")}
HEAD = {"en": ("Scene", "Step", "Engine", "What happens", "Estimate"),
        "zh": ("场景", "步骤", "引擎", "处理", "预估")}


def totals_line(p: dict, lang: str) -> str:
    zh = lang == "zh"
    reused = sum(1 for r in p["steps"] if r["state"] in ("cached", "shared"))
    parts = [f"{len(p['scenes'])} 个场景，时长 {p['duration']:g} 秒" if zh
             else f"{len(p['scenes'])} scenes, {p['duration']:g} s",
             f"{p['runs']} 步要渲染，{reused} 步沿用" if zh else f"{p['runs']} steps to render, {reused} reused"]
    if p["cny"]:
        parts.append(f"云端约 ¥{p['cny']:.2f}" if zh else f"cloud about ¥{p['cny']:.2f}")
    if p["local_seconds"]:
        parts.append(f"本机约 {duration_text(p['local_seconds'], zh)}" if zh
                     else f"local about {duration_text(p['local_seconds'], zh)}")
    if p["unknown"]:
        parts.append(f"{p['unknown']} 步暂无预估（本机首次运行或无价格表）" if zh
                     else f"{p['unknown']} without an estimate (first run here, or no price table)")
    return " · ".join(parts)


def plan_html(p: dict, lang: str) -> str:
    zh = lang == "zh"
    esc = html.escape
    rows = []
    for r in p["steps"]:
        state = STATES.get(r["state"], (r["state"], r["state"]))[1 if zh else 0]
        what = state + (f" · {esc(r['note'])}" if r["note"] else "")
        guess = esc(r["estimate"]["text"]) if r.get("estimate") else "—"
        rows.append(f"<tr data-state='{esc(r['state'])}'><td>{esc(r['scene'])}</td><td>{esc(step_name(r['step'], lang))}</td>"
                    f"<td>{esc(r['engine'])}</td><td>{what}</td><td>{guess}</td></tr>")
    notes = "".join(f"<li><b>{esc(sid)}</b>: {esc('; '.join(plan_note(x, lang) for x in n))}</li>"
                    for sid, n in p["notes"].items())
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in HEAD["zh" if zh else "en"])
    return (f"<div id='plan-table'><p><b>{esc(totals_line(p, lang))}</b></p>"
            f"<table style='width:100%;font-size:0.9em'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>" + (f"<ul>{notes}</ul>" if notes else "") + "</div>")


def refresh(episodes):
    """The handler that redraws the plan box for ``(project, only)``."""

    @on("user")
    def show(pid, only_v, request: gr.Request = None):
        lang = lang_of(request)
        if not pid:
            return ""
        try:
            return plan_html(preview(episodes, pid, caller(request), only_v or None, lang), lang)
        except AppError as exc:  # a plan that cannot run: say why where the Render button is
            return f"<p id='plan-table' data-error='1'>⚠ {html.escape(exc.text(lang))}</p>"

    return show


PLAN_QUEUE = one_at_a_time("project-plan")


def build(episodes, project, only) -> gr.HTML:
    box = gr.HTML(elem_id="episode-plan")

    @on("user")
    def plan_episode(project_id: str, scenes: list | None = None, request: gr.Request = None) -> dict:
        """The plan with reuse and estimates: ``{project, scenes, duration, steps: [...], runs, cny,
        local_seconds, unknown}``."""
        return preview(episodes, project_id, caller(request), list(scenes) if scenes else None, lang_of(request))

    show = refresh(episodes)
    for trigger in (project.change, only.change):  # one read at a time: the last plan drawn is the newest
        trigger(show, [project, only], box, api_visibility="private", **PLAN_QUEUE)
    gr.api(plan_episode, api_name="plan_episode", concurrency_limit=None)
    return box
