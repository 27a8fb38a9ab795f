"""Settings → Workers: the team's fleet (team mode), read from the ``workers`` table.

``build(studio, t)`` creates the components inside the current Blocks and returns
``(load, outputs)`` like the other settings sections.
"""

from __future__ import annotations

import html
import time

import gradio as gr

from app.backends import is_team, redact

from app.access import caller
from core.errors import Forbidden, Unauthorized

from .api import on
from .i18n import lang_of

STATE = {"alive": ("🟢 在线", "🟢 alive"), "lost": ("🔴 失联", "🔴 lost"), "stopped": ("⚪ 已停止", "⚪ stopped")}


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f}"


def _cell(value) -> str:
    return html.escape(str(value)).replace("|", "\\|")


def fleet_markdown(studio, lang: str) -> str:
    from app.team.fleet import snapshot

    zh = lang == "zh"
    settings = studio.settings
    if not is_team(settings):
        return ("本机模式：任务在这台电脑上运行。多台机器协作请见 docs/team.md（团队模式）。" if zh else
                "Embedded mode: jobs run on this machine. To add GPU machines, see docs/team.md (team mode).")
    rows = snapshot(settings.team.heartbeat_s)
    queue = redact(settings.queue_url or settings.database_url)
    head = (f"团队模式 · 数据库 `{_cell(redact(settings.database_url))}` · 队列 `{_cell(queue)}`" if zh else
            f"Team mode · database `{_cell(redact(settings.database_url))}` · queue `{_cell(queue)}`")
    if not rows:
        return head + "\n\n" + ("还没有工作机。启动：`python launch.py worker ...`" if zh else
                                "No workers yet. Start one: `python launch.py worker ...`")
    cols = ("| 状态 | 主机 | 角色 | 通道 | GPU | 空闲显存 (GB) | 可运行引擎 | 已加载 | 运行中 | 心跳 |" if zh else
            "| State | Host | Role | Lanes | GPUs | Free VRAM (GB) | Engines | Warm | Running | Heartbeat |")
    lines = [head, "", cols, "|---|---|---|---|---|---|---|---|---|---|"]
    now = time.time()
    for r in rows:
        state = STATE.get(r["state"], (r["state"], r["state"]))[0 if zh else 1]
        vram = ", ".join(f"{g['device']}: {_gb(g['free'])}/{_gb(g['total'])}" for g in r["vram"]) or "—"
        gpus = ",".join(str(g) for g in r["gpus"]) or "—"
        beat = f"{r['heartbeat_age_s']:.0f}s" if r["state"] != "stopped" else "—"
        cells = [state, f"{r['host']} (pid {r['pid']})", r["role"], ",".join(r["lanes"]) or "—", gpus, vram,
                 ", ".join(r["engines"]) or "—", ", ".join(r["warm"]) or "—",
                 f"{len(r['running'])}/{r['slots']}", beat]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    lines.append(f"更新于 {time.strftime('%H:%M:%S', time.localtime(now))}" if zh else
                  f"As of {time.strftime('%H:%M:%S', time.localtime(now))}")
    return "\n".join(lines)


def build(studio, t, admin):
    gr.Markdown(t("h_workers"))
    listing = gr.Markdown(elem_id="fleet-table")
    refresh = gr.Button(t("refresh"), size="sm")

    @on("user")  # the listing for admins; others are told it is admin-only
    def load(request: gr.Request = None):
        try:
            admin.check_fleet(caller(request))
        except (Forbidden, Unauthorized) as exc:
            return exc.text(lang_of(request))
        return fleet_markdown(studio, lang_of(request))

    refresh.click(load, None, [listing], api_visibility="private")
    return load, [listing]
