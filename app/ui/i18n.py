"""UI texts in English and Simplified Chinese, through Gradio's own ``gr.I18n``.

Gradio picks the language from the browser and lets the user switch it in the footer's
Settings panel. Server-side messages (errors, table headers) follow the request's
``Accept-Language``; ``lang_of(request)`` reads it. One language at a time: every key has
an English and a Chinese text, and nothing shows both (the brand line excepted).

Engine parameter labels and help come from ``app.ui.param_texts`` (keys ``p_<field>`` and
``pd_<Params class>_<field>``), added to the same tables. The Projects tab's texts live in
``app.ui.project_texts`` (keys ``pj_``, ``pt_``, ``ps_``, ``ch_``, ``sc_``, ...), merged into ``TEXTS``.
"""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    # key: (English, 简体中文)
    "title": ("Xianying Studio", "仙影工作室"),
    "subtitle": ("Local AI video studio: your GPU or your own cloud keys.",
                 "本地 AI 视频工作室：用你自己的显卡或云服务密钥。"),
    "tab_create": ("Create", "创作"),
    "tab_projects": ("Projects", "项目"),
    "tab_queue": ("Queue", "队列"),
    "tab_gallery": ("Gallery", "作品"),
    "tab_settings": ("Settings", "设置"),
    "engine": ("Engine", "引擎"),
    "prompt": ("Prompt", "提示词"),
    "prompt_ph": ("Describe the shot, e.g. a cultivator flies on his sword above a sea of clouds",
                  "描述画面，例如：韩立御剑飞行，云海翻腾，仙侠风格"),
    "negative_prompt": ("Negative prompt", "反向提示词"),
    "image": ("Input image (first frame / reference)", "输入图片（首帧/参考图）"),
    "last_image": ("Last frame (optional)", "尾帧（可选）"),
    "random_seed": ("Random seed", "随机种子"),
    "seed": ("Seed", "种子"),
    "submit": ("Generate", "生成"),
    "params": ("### Parameters", "### 参数"),
    "advanced": ("Advanced: memory, speed and raw parameters", "高级：显存、速度与原始参数"),
    "aspect": ("Aspect ratio", "画面比例"),
    "quality": ("Size", "清晰度"),
    "duration": ("Duration (seconds)", "时长（秒）"),
    "preset": ("Preset", "预设"),
    "preset_draft": ("Draft (fast)", "草稿（快）"),
    "preset_standard": ("Standard", "标准"),
    "preset_fine": ("Fine (slow)", "精细（慢）"),
    "q_low": ("Small", "低"),
    "q_medium": ("Medium", "中"),
    "q_high": ("Large", "高"),
    "estimate": ("Estimate", "预估"),
    "submitted": ("Submitted", "已提交"),
    "jobs": ("Jobs", "任务"),
    "selected_job": ("Selected job", "选中的任务"),
    "cancel": ("Cancel", "取消"),
    "retry": ("Retry", "重试"),
    "retry_anyway": ("Retry anyway", "仍然重试"),
    "rerun": ("Re-run (same seed)", "再次生成（相同种子）"),
    "refresh": ("Refresh", "刷新"),
    "status_filter": ("Show", "显示"),
    "f_all": ("All", "全部"),
    "f_active": ("Active", "进行中"),
    "f_succeeded": ("Succeeded", "已完成"),
    "f_failed": ("Failed", "失败"),
    "details": ("Details", "详情"),
    "raw_json": ("Raw JSON", "原始 JSON"),
    "task_id": ("Task", "任务编号"),
    "animate": ("Make a video from this still", "用这张图生成视频"),
    "animate_engine": ("Image-to-video engine", "图生视频引擎"),
    "animate_pick": ("Pick an image-to-video engine first.", "请先选择图生视频引擎。"),
    "from_job": ("Input image: output of task {job}", "输入图片：任务 {job} 的输出"),
    "output": ("Output", "输出"),
    "engines": ("Engines", "引擎"),
    "h_engines": ("### Engines", "### 引擎"),
    "h_models": ("### Models", "### 模型"),
    "h_provider_keys": ("### Provider keys", "### 服务商密钥"),
    "h_api_keys": ("### API keys", "### API 密钥"),
    "h_workers": ("### Workers", "### 工作机"),
    "h_usage": ("### Cloud usage", "### 云端用量"),
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
    "ak_user": ("User", "用户"),
    "ak_label": ("Label", "备注"),
    "ak_user_ph": ("e.g. alice", "例如 alice"),
    "ak_label_ph": ("e.g. render-farm script", "例如 渲染农场脚本"),
    "ak_admin": ("Admin", "管理员"),
    "ak_create": ("Create key", "创建密钥"),
    "ak_new": ("New key (shown once)", "新密钥（只显示这一次）"),
    "ak_id": ("Key id", "密钥 ID"),
    "ak_revoke": ("Revoke", "吊销"),
    "days": ("Days", "天数"),
    "no_jobs": ("No jobs yet. Create one in the Create tab.", "还没有任务。请在“创作”页创建。"),
    "no_outputs": ("Finished videos and images appear here.", "完成的视频和图片会显示在这里。"),
    "engine_unavailable": ("This engine is not available", "此引擎不可用"),
    "choice_auto": ("Auto", "自动"),
    "choice_on": ("On", "开"),
    "choice_off": ("Off", "关"),
    "lora_help": ("LoRA files in models/loras; type name:0.7 for a weight other than 1.0",
                  "LoRA 文件位于 models/loras；输入 名称:0.7 可设置权重（默认 1.0）"),
}

from .project_texts import PROJECT_TEXTS  # noqa: E402  (the Projects tab's own table)

if TEXTS.keys() & PROJECT_TEXTS.keys():
    raise RuntimeError(f"UI text keys defined twice: {sorted(TEXTS.keys() & PROJECT_TEXTS.keys())}")
TEXTS.update(PROJECT_TEXTS)

# Status words, engine kinds and other words the server writes into HTML/Markdown.
WORDS: dict[str, tuple[str, str]] = {
    "queued": ("queued", "排队中"), "running": ("running", "运行中"), "succeeded": ("succeeded", "已完成"),
    "failed": ("failed", "失败"), "cancelled": ("cancelled", "已取消"), "local": ("local", "本地"),
    "cloud": ("cloud", "云端"),
}


_ENGINE_CLASSES: list = []  # the studio's engine classes, given to i18n() when the UI is built


def all_texts() -> dict[str, tuple[str, str]]:
    from .param_texts import param_texts

    return {**TEXTS, **param_texts(_ENGINE_CLASSES)}


def i18n(engine_classes=()):
    import gradio as gr

    if engine_classes:
        _ENGINE_CLASSES[:] = list(engine_classes)
    texts = all_texts()
    return gr.I18n(en={k: v[0] for k, v in texts.items()}, **{"zh-CN": {k: v[1] for k, v in texts.items()}})


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
    en, zh = TEXTS[key] if key in TEXTS else all_texts()[key]
    return zh if lang == "zh" else en


def word(value: str, lang: str) -> str:
    """A status word or kind in the request's language (unknown words as they are)."""
    pair = WORDS.get(value)
    return value if pair is None else pair[1 if lang == "zh" else 0]


def both(key: str) -> str:
    """Chinese and English in one plain string (kept for callers outside this package's tabs)."""
    en, zh = TEXTS[key]
    return f"{zh} · {en}"
