"""The Gradio UI: one module per tab, each ``build(...)`` creating its components and wiring
events to the job service. No job state lives here: every view reads the job table."""

from __future__ import annotations

import gradio as gr

from . import api, create, fleet_view, gallery, keys_view, projects_view, queue_view, settings_view, usage_view
from .i18n import i18n

CSS = """
.xy-jobs {width:100%; border-collapse:collapse; font-size:0.9em}
.xy-jobs th, .xy-jobs td {padding:4px 6px; border-bottom:1px solid var(--border-color-primary); text-align:left}
.xy-thumb {height:40px; border-radius:4px}
.xy-bar {width:120px; height:8px; background:var(--neutral-200); border-radius:4px; overflow:hidden; display:inline-block}
.xy-bar div {height:100%}
.xy-badge {color:white; padding:1px 8px; border-radius:8px; font-size:0.85em}
.xy-act {padding:1px 8px; margin-right:4px; border:1px solid var(--border-color-primary); border-radius:6px}
.xy-hidden {display:none !important}
#engines-table td:nth-child(-n+3), #models-table td:nth-child(-n+3),
#engines-table td:nth-child(1) code, #models-table td:nth-child(1) code, #models-table th {white-space:nowrap; word-break:keep-all}
"""


def build_ui(studio) -> tuple[gr.Blocks, gr.I18n]:
    from app.admin import AdminService

    service = studio.service
    admin = AdminService(studio)
    t = i18n([type(e) for e in studio.engines.values()])
    with gr.Blocks(title="仙影 Xianying Studio") as demo:
        gr.Markdown("# 仙影 · Xianying Studio")
        gr.Markdown(t("subtitle"))
        with gr.Tabs() as tabs:
            with gr.Tab(t("tab_create"), id="create"):
                create_handles = create.build(service, t)
            with gr.Tab(t("tab_projects"), id="projects"):
                projects_view.build(service, t)
            with gr.Tab(t("tab_queue"), id="queue"):
                row_js = queue_view.build(service, t)
            with gr.Tab(t("tab_gallery"), id="gallery") as gallery_tab:
                gallery_load, gallery_outs = gallery.build(service, t, tabs, create_handles)
            with gr.Tab(t("tab_settings"), id="settings") as settings_tab:
                settings_load, settings_outs = settings_view.build(service, studio.secrets, t,
                                                                   getattr(studio, "downloads", None), admin)
                keys_load, keys_outs = keys_view.build(studio, t, admin)
                fleet_load, fleet_outs = fleet_view.build(studio, t, admin)
                usage_load, usage_outs = usage_view.build(service, t)
        gallery_tab.select(gallery_load, None, gallery_outs, api_visibility="private")
        for load, outs in ((settings_load, settings_outs), (keys_load, keys_outs), (fleet_load, fleet_outs),
                           (usage_load, usage_outs)):
            settings_tab.select(load, None, outs, api_visibility="private")
            demo.load(load, None, outs, api_visibility="private")
        demo.load(None, None, None, js=row_js)
        api.register(service)
    return demo, t
