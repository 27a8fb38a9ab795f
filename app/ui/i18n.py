"""UI texts in English and Simplified Chinese, through Gradio's own ``gr.I18n``.

Gradio picks the language from the browser and lets the user switch it in the footer's
Settings panel. Server-side messages (errors, table headers) follow the request's
``Accept-Language``; ``lang_of(request)`` reads it.
"""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # key: (English, 简体中文)
    "title": ("Xianying Studio", "仙影工作室"),
    "subtitle": ("Local AI video studio: your GPU or your own cloud keys.",
                 "本地 AI 视频工作室：用你自己的显卡或云服务密钥。"),
    "tab_create": ("Create", "创作"),
    "tab_queue": ("Queue", "队列"),
    "tab_gallery": ("Gallery", "作品"),
    "tab_settings": ("Settings", "设置"),
    "engine": ("Engine", "引擎"),
    "prompt": ("Prompt", "提示词"),
    "prompt_ph": ("Describe the shot, e.g. 韩立御剑飞行，云海翻腾，仙侠风格",
                  "描述画面，例如：韩立御剑飞行，云海翻腾，仙侠风格"),
    "negative_prompt": ("Negative prompt", "反向提示词"),
    "image": ("Input image (first frame / reference)", "输入图片（首帧/参考图）"),
    "last_image": ("Last frame (optional)", "尾帧（可选）"),
    "random_seed": ("Random seed", "随机种子"),
    "submit": ("Generate", "生成"),
    "params": ("Parameters", "参数"),
    "submitted": ("Submitted", "已提交"),
    "jobs": ("Jobs", "任务"),
    "selected_job": ("Selected job", "选中的任务"),
    "cancel": ("Cancel", "取消"),
    "retry": ("Retry", "重试"),
    "retry_anyway": ("Retry anyway", "仍然重试"),
    "rerun": ("Re-run (same seed)", "再次生成（相同种子）"),
    "refresh": ("Refresh", "刷新"),
    "status_filter": ("Show", "显示"),
    "details": ("Details", "详情"),
    "animate": ("Make a video from this still", "用这张图生成视频"),
    "animate_engine": ("Image-to-video engine", "图生视频引擎"),
    "animate_pick": ("Pick an image-to-video engine first.", "请先选择图生视频引擎。"),
    "from_job": ("Input image: output of task {job}", "输入图片：任务 {job} 的输出"),
    "output": ("Output", "输出"),
    "engines": ("Engines", "引擎"),
    "keys": ("Provider keys", "服务商密钥"),
    "key_name": ("Key", "密钥名称"),
    "key_value": ("Value (stored 0600 outside the repository; never shown again)",
                  "值（以 0600 权限保存在仓库外，之后不再显示）"),
    "save_key": ("Save key", "保存密钥"),
    "clear_key": ("Remove key", "删除密钥"),
    "models": ("Models", "模型"),
    "download_model": ("Model to download (Hugging Face hub or hf_endpoint mirror)",
                       "要下载的模型（Hugging Face 或 hf_endpoint 镜像）"),
    "download": ("Download", "下载"),
    "cancel_download": ("Cancel download", "取消下载"),
    "no_jobs": ("No jobs yet. Create one in the Create tab.", "还没有任务。请在“创作”页创建。"),
    "no_outputs": ("Finished videos and images appear here.", "完成的视频和图片会显示在这里。"),
    "engine_unavailable": ("This engine is not available", "此引擎不可用"),
}


def i18n():
    import gradio as gr

    return gr.I18n(en={k: v[0] for k, v in TEXTS.items()}, **{"zh-CN": {k: v[1] for k, v in TEXTS.items()}})


def lang_of(request) -> str:
    """'zh' or 'en' from the request's Accept-Language (Chinese first when it is preferred)."""
    header = ""
    if request is not None:
        try:
            header = request.headers.get("accept-language", "") or ""
        except AttributeError:
            header = ""
    first = header.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def i18n_text(key: str, lang: str) -> str:
    en, zh = TEXTS[key]
    return zh if lang == "zh" else en


def both(key: str) -> str:
    """Chinese and English in one plain string, for the labels gradio 6 does not translate:
    an interactive upload component's label shows "[object Object]" when given gr.I18n data."""
    en, zh = TEXTS[key]
    return f"{zh} · {en}"
