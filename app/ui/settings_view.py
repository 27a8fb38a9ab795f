"""Settings tab: which engines can run and why not, provider keys (write-only), models on disk."""

from __future__ import annotations

import html

import gradio as gr

from app.secrets import KNOWN

from .api import guarded
from .i18n import lang_of


def engines_markdown(service, lang: str) -> str:
    zh = lang == "zh"
    rows = ["| 引擎 | 类型 | 状态 | 说明 |" if zh else "| Engine | Kind | Status | What to do |", "|---|---|---|---|"]
    for e in service.engines_info():
        ok = ("✅ 可用" if zh else "✅ available") if e["available"] else ("⚠ 不可用" if zh else "⚠ unavailable")
        reason = html.escape(e["reason"]).replace("|", "\\|")
        rows.append(f"| `{e['id']}` | {e['kind']} | {ok} | {reason} |")
    return "\n".join(rows)


def keys_markdown(secrets, lang: str) -> str:
    zh = lang == "zh"
    lines = []
    for name, source in secrets.describe().items():
        state = {"env": "已设置（环境变量）" if zh else "set (environment)",
                 "file": "已设置（密钥文件）" if zh else "set (secrets file)"}.get(source, "未设置" if zh else "not set")
        lines.append(f"- `{name}`: {state}")
    where = f"`{secrets.path}`"
    lines.append("\n" + ("密钥文件：" if zh else "Secrets file: ") + where)
    return "\n".join(lines)


def models_markdown(service, lang: str) -> str:
    from engines.local.weights import models_report

    zh = lang == "zh"
    rows = ["| 模型 | 状态 | 大小 | 位置 | 缺少 |" if zh else "| Model | State | Size | Where | Missing |",
            "|---|---|---|---|---|"]
    for r in models_report(service.engines):
        state = ("✅ 已就绪" if zh else "✅ present") if r["present"] else ("⚠ 缺失" if zh else "⚠ missing")
        size = f"{r['size_bytes'] / 2**30:.2f} GB" if r["size_bytes"] else "—"
        where = r["path"] or r["expected"]
        missing = ", ".join(r["missing"]) or "—"
        rows.append(f"| `{r['engine']}` | {state} | {size} | `{html.escape(where)}` | {html.escape(missing)} |")
    return "\n".join(rows)


def build(service, secrets, t) -> None:
    engines_md = gr.Markdown(elem_id="engines-table")
    gr.Markdown("---")
    gr.Markdown("### 模型 · Models")
    models_md = gr.Markdown(elem_id="models-table")
    gr.Markdown("---")
    keys_md = gr.Markdown(elem_id="keys-state")
    with gr.Row():
        key_name = gr.Dropdown(list(KNOWN), value=KNOWN[0], label=t("key_name"), scale=2)
        key_value = gr.Textbox(label=t("key_value"), type="password", scale=4)
    with gr.Row():
        save = gr.Button(t("save_key"), variant="primary")
        clear = gr.Button(t("clear_key"))
    refresh = gr.Button(t("refresh"))

    def load(request: gr.Request):
        lang = lang_of(request)
        return engines_markdown(service, lang), keys_markdown(secrets, lang), models_markdown(service, lang)

    @guarded
    def save_key(name, value, request: gr.Request = None):
        if name not in KNOWN:
            return gr.update(), gr.update(), ""
        secrets.set(name, value)
        lang = lang_of(request)
        return engines_markdown(service, lang), keys_markdown(secrets, lang), ""

    @guarded
    def clear_key(name, request: gr.Request = None):
        return save_key(name, None, request=request)

    refresh.click(load, None, [engines_md, keys_md, models_md], api_visibility="private")
    save.click(save_key, [key_name, key_value], [engines_md, keys_md, key_value], api_visibility="private")
    clear.click(clear_key, key_name, [engines_md, keys_md, key_value], api_visibility="private")
    return load, [engines_md, keys_md, models_md]
