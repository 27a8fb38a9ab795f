"""Settings → API keys: create (shown once), list, revoke. Admins only (the person at the machine
on a loopback bind is one).

``build(studio, t)`` creates the components inside the current Blocks and returns
``(load, outputs)`` like the other settings sections, for the tab's ``select``/``load`` events.
"""

from __future__ import annotations

import html

import gradio as gr

from app.access import caller
from app.api.auth import describe
from core.errors import Forbidden, Unauthorized

from .api import on
from .i18n import lang_of


def keys_markdown(studio, lang: str) -> str:
    zh = lang == "zh"
    rows = [describe(r) for r in studio.ops.keys.list()]
    if not rows:
        return "还没有 API 密钥。" if zh else "No API keys yet."
    head = "| ID | 用户 | 开头 | 管理员 | 状态 | 创建时间 | 最近使用 | 备注 |" if zh else \
        "| ID | User | Starts with | Admin | State | Created | Last used | Label |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        state = ("有效" if zh else "active") if r["active"] else ("已吊销" if zh else "revoked")
        cells = [f"`{r['id']}`", r["user"], f"`{r['hint']}`", "✔" if r["admin"] else "", state,
                 r["created_at"] or "", r["last_used_at"] or "", r["label"]]
        lines.append("| " + " | ".join(html.escape(str(c)).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def build(studio, t, admins):
    gr.Markdown(t("h_api_keys"))
    listing = gr.Markdown(elem_id="api-keys-list")
    with gr.Row():
        user = gr.Textbox(label=t("ak_user"), placeholder=t("ak_user_ph"), scale=2)
        label = gr.Textbox(label=t("ak_label"), placeholder=t("ak_label_ph"), scale=2)
        admin = gr.Checkbox(label=t("ak_admin"), value=False, scale=1)
        create = gr.Button(t("ak_create"), variant="primary", scale=1)
    new_key = gr.Textbox(label=t("ak_new"), interactive=False,
                         buttons=["copy"], elem_id="api-key-new")
    with gr.Row():
        key_id = gr.Textbox(label=t("ak_id"), placeholder="1e42cc759de2", scale=3)
        revoke = gr.Button(t("ak_revoke"), variant="stop", scale=1)

    @on("user")  # shows the listing to admins, and to others why they see none
    def load(request: gr.Request = None):
        try:
            admins.keys(caller(request))
        except (Forbidden, Unauthorized) as exc:
            return exc.text(lang_of(request))
        return keys_markdown(studio, lang_of(request))

    @on("admin", "create API keys", "创建 API 密钥")
    def create_key(name, note, is_admin, request: gr.Request = None):
        row, key = admins.create_key(caller(request), name, admin=bool(is_admin), label=note or "")
        return keys_markdown(studio, lang_of(request)), key, ""

    @on("admin", "revoke API keys", "吊销 API 密钥")
    def revoke_key(kid, request: gr.Request = None):
        admins.revoke_key(caller(request), kid)
        return keys_markdown(studio, lang_of(request)), ""

    create.click(create_key, [user, label, admin], [listing, new_key, user], api_visibility="private")
    revoke.click(revoke_key, key_id, [listing, key_id], api_visibility="private")
    return load, [listing]
