"""Labels and help for engine parameters in both languages, keyed by field name.

The English help is the field's own ``description``; the Chinese help is the field's
``json_schema_extra["description_zh"]`` when an engine sets one, else the generic text here.
Labels are per field name (``num_inference_steps`` → "Steps" / "步数"). Choices of a few
``Literal`` fields (offload modes, schedulers...) have words too; ids (model names) stay ids.
All of it is registered in the Gradio I18n tables under stable keys (see ``label_key`` etc.).
"""

from __future__ import annotations

import re

# field: (English label, 中文标签, 中文说明)
FIELDS: dict[str, tuple[str, str, str]] = {
    "offload": ("GPU memory mode", "显存模式", "自动（按空闲显存）、不卸载、整模型/分组/逐层卸载到内存（更省显存，更慢）"),
    "vae_tiling": ("VAE tiling", "VAE 分块解码", "分块解码（更省显存）；自动 = 卸载时开启"),
    "attention": ("Attention kernel", "注意力实现", "自动、sdpa（PyTorch）、flash、sage、xformers"),
    "width": ("Width", "宽度", "画面宽度（像素）"),
    "height": ("Height", "高度", "画面高度（像素）"),
    "num_frames": ("Frames", "帧数", "生成的帧数"),
    "num_inference_steps": ("Steps", "步数", "去噪步数：越多越精细，也越慢"),
    "guidance_scale": ("Guidance", "引导强度", "提示词引导强度（CFG）"),
    "fps": ("Frames per second", "帧率", "每秒帧数"),
    "seed": ("Seed", "种子", "随机种子；留空则随机"),
    "scheduler": ("Sampler", "采样器", "采样器：模型自带的或 diffusers 的调度器"),
    "num_images": ("Images", "图片数量", "一批生成的图片数（第 i 张使用种子 + i）"),
    "loras": ("LoRA", "LoRA", "models/loras 中的 LoRA 文件及权重"),
    "identity_strength": ("Identity strength", "人脸结构强度", "IdentityNet（人脸关键点 ControlNet）的强度"),
    "ip_adapter_scale": ("Face likeness", "人脸相似度", "人脸特征的权重"),
    "motion_bucket_id": ("Motion", "运动幅度", "越高运动越多"),
    "noise_aug_strength": ("Noise on the input", "输入噪声", "加到输入图片上的噪声：越多越不像原图，运动越多"),
    "decode_chunk_size": ("Frames decoded at once", "每次解码帧数", "越小越省显存"),
    "min_guidance_scale": ("Guidance (first frame)", "首帧引导强度", "第一帧的引导强度"),
    "max_guidance_scale": ("Guidance (last frame)", "末帧引导强度", "最后一帧的引导强度"),
    "model": ("Model", "模型", "服务商的视频模型"),
    "model_version": ("Model version", "模型版本", "留空则使用模型默认版本"),
    "duration": ("Duration (seconds)", "时长（秒）", "视频秒数（可选值取决于模型）"),
    "resolution": ("Resolution", "分辨率", "分辨率档位（取决于模型）"),
    "aspect_ratio": ("Aspect ratio", "画面比例", "画面比例，例如 16:9、9:16、1:1"),
    "ratio": ("Aspect ratio", "画面比例", "画面比例：16:9、4:3、1:1、3:4、9:16、21:9 或自适应"),
    "enhance_prompt": ("Improve the prompt", "优化提示词", "让服务商改写提示词"),
    "prompt_extend": ("Improve the prompt", "优化提示词", "让服务商改写提示词以获得更好效果"),
    "sub_app_id": ("VOD sub-application", "点播子应用", "留空则使用 TENCENTCLOUD_VOD_SUBAPPID"),
    "watermark": ("Watermark", "水印", "添加“AI 生成”水印"),
    "camera_fixed": ("Fixed camera", "固定镜头", "镜头保持不动"),
    "size": ("Frame size", "画面尺寸", "画面尺寸，例如 1280*720；留空为默认"),
    "quality": ("Speed or quality", "速度或质量", "速度优先或质量优先"),
    "style": ("Style", "风格", "画面风格"),
    "movement_amplitude": ("Motion amplitude", "运动幅度", "画面运动幅度"),
    "with_audio": ("With sound", "生成声音", "同时生成声音"),
    "text": ("Text", "文本", "要说的话（一句旁白或对白）"),
    "voice": ("Voice", "音色", "旁白、男声、女声，或引擎自带的音色"),
    "speed": ("Speaking rate", "语速", "1.0 为正常，1.2 快 20%"),
    "format": ("Audio format", "音频格式", "音频文件格式"),
    "language_type": ("Language", "语言", "文本的语言（自动则由模型判断）"),
    "sample_rate": ("Sample rate", "采样率", "采样率（24000 仅部分音色支持）"),
    "primary_language": ("Main language", "主要语言", "文本的主要语言"),
}

# field: {value: (English, 中文)} for Literal choices that are words, not ids
CHOICES: dict[str, dict[str, tuple[str, str]]] = {
    "offload": {"auto": ("Auto", "自动"), "none": ("None", "不卸载"), "model": ("Whole model", "整模型卸载"),
                "group": ("Groups", "分组卸载"), "sequential": ("Layer by layer", "逐层卸载")},
    "attention": {"auto": ("Auto", "自动")},
    "scheduler": {"default": ("Model default", "模型默认")},
    "quality": {"speed": ("Speed first", "速度优先"), "quality": ("Quality first", "质量优先")},
    "style": {"general": ("General", "通用"), "anime": ("Anime", "动漫")},
    "movement_amplitude": {"auto": ("Auto", "自动"), "small": ("Small", "小"), "medium": ("Medium", "中"),
                           "large": ("Large", "大")},
    "language_type": {"Auto": ("Auto", "自动"), "Chinese": ("Chinese", "中文"), "English": ("English", "英文")},
    "primary_language": {"zh": ("Chinese", "中文"), "en": ("English", "英文")},
}

# engine id: Chinese title (English titles are the engines' own)
ENGINE_TITLES_ZH: dict[str, str] = {
    "wan2.1-t2v-1.3b": "万相 Wan2.1 文生视频 1.3B（本地）",
    "wan2.1-i2v-480p": "万相 Wan2.1 图生视频 14B 480P（本地）",
    "wan2.1-i2v-720p": "万相 Wan2.1 图生视频 14B 720P（本地）",
    "sdxl": "SDXL 文生图（本地）",
    "sdxl-instantid": "SDXL + InstantID 人脸参考（本地）",
    "svd-xt": "Stable Video Diffusion XT 图生视频（本地）",
    "tencent-vod": "腾讯云点播 AIGC（海螺、可灵、Vidu、混元…）",
    "ark": "火山方舟 Seedance",
    "dashscope": "阿里云百炼 万相",
    "zhipu": "智谱 CogVideoX / Vidu",
    "local-tts": "本地语音 Kokoro 82M（中英文，离线）",
    "dashscope-tts": "阿里云百炼 通义语音合成",
    "tencent-tts": "腾讯云语音合成（逐字时间）",
}


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", str(s))


def label_key(field: str) -> str:
    return f"p_{_slug(field)}"


def help_key(model, field: str) -> str:
    return f"pd_{_slug(model.__name__)}_{_slug(field)}"


def choice_key(field: str, value) -> str | None:
    return f"c_{_slug(field)}_{_slug(value)}" if value in CHOICES.get(field, {}) else None


def engine_key(engine_id: str, available: bool = True) -> str:
    return f"et_{_slug(engine_id)}" + ("" if available else "_na")


def engine_choices(infos, t) -> list[tuple]:
    """Dropdown choices for engines: the title in the page's language, ⚠ when it cannot run."""
    return [(t(engine_key(e["id"], e["available"])) if t is not None else e["title"] or e["id"], e["id"])
            for e in infos]


def help_pair(name: str, field) -> tuple[str, str]:
    en = field.description or ""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    zh = extra.get("description_zh") or FIELDS.get(name, ("", "", en))[2]
    return en, zh


def label_pair(name: str, field=None) -> tuple[str, str]:
    extra = field.json_schema_extra if field is not None and isinstance(field.json_schema_extra, dict) else {}
    en, zh = FIELDS.get(name, (name.replace("_", " ").capitalize(), name, ""))[:2]
    return extra.get("title") or en, extra.get("title_zh") or zh


def param_texts(engine_classes=()) -> dict[str, tuple[str, str]]:
    """Every key above for the given engine classes (the studio's: cheap, pydantic models only)."""
    out: dict[str, tuple[str, str]] = {}
    for cls in engine_classes:
        title = (cls.title or cls.id, ENGINE_TITLES_ZH.get(cls.id, cls.title or cls.id))
        out[engine_key(cls.id)] = title
        out[engine_key(cls.id) + "_na"] = (title[0] + " ⚠", title[1] + " ⚠")
        for name, field in cls.Params.model_fields.items():
            out[label_key(name)] = label_pair(name, field)
            out[help_key(cls.Params, name)] = help_pair(name, field)
    for name, values in CHOICES.items():
        for value, pair in values.items():
            out[choice_key(name, value)] = pair
    return out
