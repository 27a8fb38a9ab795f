"""Settings tab: which engines can run and why not, provider keys (write-only), models on disk."""

from __future__ import annotations

import html

import gradio as gr

from app.access import caller
from app.secrets import KNOWN

from .api import on
from .i18n import lang_of, word


def engines_markdown(service, lang: str) -> str:
    zh = lang == "zh"
    rows = ["| 引擎 | 类型 | 状态 | 说明 |" if zh else "| Engine | Kind | Status | What to do |", "|---|---|---|---|"]
    for e in service.engines_info():
        ok = ("✅ 可用" if zh else "✅ available") if e["available"] else ("⚠ 不可用" if zh else "⚠ unavailable")
        reason = html.escape(e["reason_zh"] if zh else e["reason"]).replace("|", "\\|")
        rows.append(f"| `{e['id']}` | {word(e['kind'], lang)} | {ok} | {reason} |")
    pool = gpu_pool_line(service, zh)
    if pool:
        rows.append("\n" + ("GPU 池：" if zh else "GPU pool: ") + html.escape(pool))
    return "\n".join(rows)


def gpu_pool_line(service, zh: bool = False) -> str | None:
    """Which gpu-lane worker owns which card (None in the lite bundle: no torch, no local engines)."""
    import importlib.util

    pool = next((e.devices for e in service.engines.values() if hasattr(e, "devices")), None)
    if pool is None or importlib.util.find_spec("torch") is None:
        return None
    gp = service.settings.gpu_pool
    return pool.describe(gp.max_concurrent if gp.enabled else 1, zh)


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
    zh = lang == "zh"
    rows = ["| 模型 | 状态 | 大小 | 位置 | 缺少 |" if zh else "| Model | State | Size | Where | Missing |",
            "|---|---|---|---|---|"]
    for r in service.models_report():
        state = ("✅ 已就绪" if zh else "✅ present") if r["present"] else ("⚠ 缺失" if zh else "⚠ missing")
        size = f"{r['size_bytes'] / 2**30:.2f} GB" if r["size_bytes"] else "—"
        where = r["path"] or r["expected"]
        missing = ", ".join(f"`{html.escape(m)}`" for m in r["missing"]) or "—"
        rows.append(f"| `{r['engine']}` | {state} | {size} | `{html.escape(where)}` | {missing} |")
    return "\n".join(rows)


def _sizes(done: int, total: int) -> str:
    unit, scale = ("GB", 2**30) if total >= 2**30 else ("MB", 2**20)
    return f"{done / scale:.1f}/{total / scale:.1f} {unit}"


def download_line(row: dict, lang: str) -> str:
    """One download as a line: a bar, then ``⏳ `sdxl` 42% · 5.8/13.9 GB · file 3/12``; or its outcome."""
    zh = lang == "zh"
    message = html.escape(row["message_zh"] if zh else row["message_en"])
    if row["state"] == "idle":
        return ""
    if row["state"] == "downloading" and row["bytes_total"]:
        pct = row["bytes_done"] * 100 // row["bytes_total"]
        n, total = min(row["files_done"] + 1, row["files_total"]), row["files_total"]
        files = f"文件 {n}/{total}" if zh else f"file {n}/{total}"
        filled = pct // 5  # a text bar: Markdown keeps it (it strips inline styles), screen readers read the %
        bar = f"`{'█' * filled}{'░' * (20 - filled)}` "
        return f"{bar}⏳ `{row['engine']}` {pct}% · {_sizes(row['bytes_done'], row['bytes_total'])} · {files}"
    icon = {"downloading": "⏳", "done": "✅", "failed": "⚠", "cancelled": "⏹"}[row["state"]]
    return f"{icon} `{row['engine']}` {message}"


def downloads_markdown(downloads, lang: str) -> str:
    lines = [line for row in downloads.status().values() if (line := download_line(row, lang))]
    for engine_id in downloads.targets():
        note = downloads.notes(engine_id)
        if note:
            lines.append(f"ℹ `{engine_id}`: {html.escape(note[1] if lang == 'zh' else note[0])}")
    return "\n\n".join(lines)


def build(service, secrets, t, downloads=None, admin=None) -> None:
    gr.Markdown(t("h_engines"))
    engines_md = gr.Markdown(elem_id="engines-table")
    gr.Markdown("---")
    gr.Markdown(t("h_models"))
    models_md = gr.Markdown(elem_id="models-table")
    if downloads is not None:
        with gr.Row():
            choices = [(f"{eid} · {repo}", eid) for eid, repo in downloads.targets().items()]
            dl_engine = gr.Dropdown(choices, value=choices[0][1] if choices else None, label=t("download_model"),
                                    scale=4)
            dl_start = gr.Button(t("download"), variant="primary", scale=1)
            dl_cancel = gr.Button(t("cancel_download"), variant="stop", scale=1)
        dl_md = gr.Markdown(elem_id="model-downloads")
        dl_timer = gr.Timer(1.0, active=False)
    gr.Markdown("---")
    gr.Markdown(t("h_provider_keys"))
    keys_md = gr.Markdown(elem_id="keys-state")
    with gr.Row():
        key_name = gr.Dropdown(list(KNOWN), value=KNOWN[0], label=t("key_name"), scale=2)
        key_value = gr.Textbox(label=t("key_value"), type="password", scale=4)
    with gr.Row():
        save = gr.Button(t("save_key"), variant="primary")
        clear = gr.Button(t("clear_key"))
    refresh = gr.Button(t("refresh"))

    @on("public")
    def load(request: gr.Request = None):
        lang = lang_of(request)
        out = [engines_markdown(service, lang), keys_markdown(secrets, lang), models_markdown(service, lang)]
        if downloads is not None:
            out += [downloads_markdown(downloads, lang), gr.update(active=downloads.running())]
        return out

    @on("admin", "change the provider keys", "修改服务商密钥")
    def save_key(name, value, request: gr.Request = None):
        if not admin.set_provider_key(caller(request), name, value):
            return gr.update(), gr.update(), ""
        lang = lang_of(request)
        return engines_markdown(service, lang), keys_markdown(secrets, lang), ""

    @on("admin", "change the provider keys", "修改服务商密钥")
    def clear_key(name, request: gr.Request = None):
        admin.set_provider_key(caller(request), name, None)
        lang = lang_of(request)
        return engines_markdown(service, lang), keys_markdown(secrets, lang), ""

    outs = [engines_md, keys_md, models_md] + ([dl_md, dl_timer] if downloads is not None else [])
    refresh.click(load, None, outs, api_visibility="private")
    save.click(save_key, [key_name, key_value], [engines_md, keys_md, key_value], api_visibility="private")
    clear.click(clear_key, key_name, [engines_md, keys_md, key_value], api_visibility="private")
    if downloads is not None:
        wire_downloads(service, admin, downloads, dl_engine, dl_start, dl_cancel, dl_md, dl_timer, engines_md,
                       models_md)
    return load, outs


def wire_downloads(service, admin, downloads, engine, start, cancel, line, timer, engines_md, models_md) -> None:
    """Download / Cancel, and a 1 s timer that shows progress while any download runs; when the
    last one ends it stops and refreshes the engines and models tables."""

    @on("admin", "download models", "下载模型")
    def do_start(engine_id, request: gr.Request = None):
        admin.start_download(caller(request), engine_id)
        return downloads_markdown(downloads, lang_of(request)), gr.update(active=True)

    @on("admin", "download models", "下载模型")
    def do_cancel(engine_id, request: gr.Request = None):
        admin.cancel_download(caller(request), engine_id)
        return downloads_markdown(downloads, lang_of(request))

    @on("public")
    def tick(request: gr.Request = None):
        lang = lang_of(request)
        if downloads.running():
            return downloads_markdown(downloads, lang), gr.update(), gr.update(), gr.update()
        return (downloads_markdown(downloads, lang), gr.update(active=False), engines_markdown(service, lang),
                models_markdown(service, lang))

    start.click(do_start, engine, [line, timer], api_visibility="private")
    cancel.click(do_cancel, engine, line, api_visibility="private")
    timer.tick(tick, None, [line, timer, engines_md, models_md], api_visibility="private")
