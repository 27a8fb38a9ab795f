"""The Projects tab's texts (its sub-tabs: storyboard, settings, characters, scenes, render, draft), in
English and Simplified Chinese: merged into ``i18n.TEXTS``. Also the few server-side words its handlers
write (``say``) and the planner's English notes and progress lines in the page's language (``plan_note``,
``episode_message``): the API keeps them in English, the page shows them in the caller's language."""

from __future__ import annotations

import re

from profiles.styles import STYLES

PROJECT_TEXTS: dict[str, tuple[str, str]] = {
    # key: (English, 简体中文)
    # the tab's top row and its "new · duplicate · import · export" accordion
    "pj_project": ("Project", "项目"),
    "pj_manage": ("New · duplicate · import · export", "新建 · 复制 · 导入 · 导出"),
    "pj_new_id": ("New project id", "新项目 ID"),
    "pj_title": ("Title", "标题"),
    "pj_title_ph": ("My xianxia series", "我的仙侠剧"),
    "pj_create": ("Create", "新建"),
    "pj_duplicate": ("Duplicate this one", "复制当前"),
    "pj_import": ("Import a zip", "导入 zip"),
    "pj_export": ("Export a zip", "导出 zip"),
    "pj_download": ("Download", "下载"),
    # sub-tabs
    "pt_storyboard": ("Storyboard", "分镜"),
    "pt_settings": ("Settings", "设置"),
    "pt_characters": ("Characters", "角色"),
    "pt_scenes": ("Scenes", "场景"),
    "pt_render": ("Render", "渲染"),
    "pt_draft": ("Draft", "起草"),
    # settings
    "ps_style": ("Style", "风格"),
    "ps_fps": ("Frame rate (fps)", "帧率（fps）"),
    "ps_resolution": ("Resolution (WxH)", "分辨率（宽x高）"),
    "ps_default_engine": ("Engine for every clip", "统一引擎（所有片段）"),
    "ps_still_engine": ("Still engine (keeps the face)", "定妆图引擎（保持人脸）"),
    "ps_i2v_engine": ("Image-to-video engine", "图生视频引擎"),
    "ps_t2v_engine": ("Text-to-video engine", "文生视频引擎"),
    "ps_seed_policy": ("Seeds", "种子策略"),
    "ps_seed_fixed": ("Fixed (unchanged scenes are reused)", "固定（未改动的场景直接复用）"),
    "ps_seed_random": ("Random", "随机"),
    "ps_upscale": ("Upscale the episode 2x", "成片放大 2 倍"),
    "ps_transition": ("Transition", "转场"),
    "ps_cut": ("Cut", "硬切"),
    "ps_crossfade": ("Crossfade", "淡入淡出"),
    "ps_fade": ("Transition length (s)", "转场时长（秒）"),
    "ps_engine_params": ("**Engine parameters** (JSON, per engine id)", "**引擎参数**（JSON，按引擎 ID）"),
    "ps_sound": ("Sound & subtitles", "声音与字幕"),
    "ps_timing": ("Scene length", "场景时长"),
    "ps_timing_voice": ("Follows the speech", "随语音"),
    "ps_timing_fixed": ("Fixed", "固定"),
    "ps_padding": ("Pause after speech (s)", "语音后留白（秒）"),
    "ps_clip_audio": ("Sound of the clips", "片段原声"),
    "ps_keep": ("Keep", "保留"),
    "ps_mute": ("Mute", "静音"),
    "ps_subtitles": ("Subtitles", "字幕"),
    "ps_sub_file": ("Files (.srt, .ass)", "文件（.srt、.ass）"),
    "ps_sub_burn": ("Burned in", "烧录进画面"),
    "ps_sub_off": ("Off", "关闭"),
    "ps_font": ("Font (empty: a Chinese font found on this machine)", "字体（空 = 自动使用本机中文字体）"),
    "ps_size": ("Size (0 = auto)", "字号（0 = 自动）"),
    "ps_position": ("Position", "位置"),
    "ps_bottom": ("Bottom", "底部"),
    "ps_top": ("Top", "顶部"),
    "ps_middle": ("Middle", "中间"),
    "ps_outline": ("Outline", "描边"),
    "ps_music": ("Music (assets/)", "音乐（assets/）"),
    "ps_music_upload": ("Upload music", "上传音乐"),
    "ps_music_volume": ("Music volume", "音乐音量"),
    "ps_ducking": ("Lower the music while anyone speaks", "说话时压低音乐"),
    "ps_save": ("Save settings", "保存设置"),
    "choice_none": ("(none)", "（无）"),
    "choice_default": ("(default)", "（默认）"),
    "choice_project_default": ("(project default)", "（项目默认）"),
    # a voice: engine, voice, speed
    "vf_narrator": ("Narrator: speech engine", "旁白：语音引擎"),
    "vf_lines": ("Lines: speech engine", "台词：语音引擎"),
    "vf_voice": ("Voice", "声音"),
    "vf_speed": ("Speed", "语速"),
    # characters
    "ch_pick": ("Character", "角色"),
    "ch_id_ph": ("e.g. hanli", "例如 hanli"),
    "ch_name": ("Name", "名字"),
    "ch_prompt": ("Prompt fragment", "提示词片段"),
    "ch_notes": ("Notes", "备注"),
    "ch_strength": ("InstantID strength", "InstantID 强度"),
    "ch_faces": ("Reference faces", "参考人脸"),
    "ch_face": ("Upload a face", "上传人脸"),
    "ch_save": ("Save character", "保存角色"),
    "ch_add_face": ("Add face", "添加人脸"),
    "ch_clear_faces": ("Clear faces", "清空人脸"),
    "ch_delete": ("Delete character", "删除角色"),
    "ch_new": ("+ New character", "＋ 新角色"),
    "ch_design": ("Design: a reference face for a character without a photo", "设计：为没有照片的角色生成参考脸"),
    # character design
    "dz_count": ("Candidates", "候选数"),
    "dz_go": ("Design", "设计"),
    "dz_check": ("Refresh candidates", "刷新候选"),
    "dz_gallery": ("Candidates", "候选"),
    "dz_use": ("Use as reference face", "用作参考脸"),
    "dz_panel": ("Design a character", "设计角色"),
    # scenes
    "sc_pick": ("Scene", "场景"),
    "sc_new": ("+ New scene", "＋ 新场景"),
    "sc_delete": ("Delete scene", "删除场景"),
    "sc_duration": ("Duration (s)", "时长（秒）"),
    "sc_seed": ("Seed (empty: derived from the project's)", "种子（空 = 由项目种子推导）"),
    "sc_characters": ("Characters", "角色"),
    "sc_camera": ("Camera", "镜头"),
    "sc_motion": ("Motion", "运动"),
    "sc_narration": ("Narration", "旁白"),
    "sc_dialogue": ("Dialogue: one “character: words” a line; “character @2.5: words” starts at 2.5 s",
                    "台词：每行“角色: 台词”，“角色 @2.5: 台词”从第 2.5 秒开始"),
    "sc_dialogue_ph": ("hanli: Where am I?\nnangong-wan @2: So you came after all.",
                       "hanli: 这是哪里？\nnangong-wan @2: 你终究还是来了。"),
    "sc_line": ("Line to preview", "试听哪一句"),
    "sc_play": ("▶ Play", "▶ 试听"),
    "sc_heard": ("Preview", "试听"),
    "sc_composed": ("Composed prompt (sent to the engine)", "合成提示词（发送给引擎）"),
    "sc_keyframe": ("Keyframe (optional)", "关键帧（可选）"),
    "sc_set_key": ("Set keyframe", "设为关键帧"),
    "sc_save": ("Save scene", "保存场景"),
    # render
    "rd_name": ("Episode name", "剧集名称"),
    "rd_only": ("Only these scenes (empty = all)", "只渲染这些场景（空 = 全部）"),
    "rd_render": ("Render episode", "渲染剧集"),
    "rd_cancel": ("Cancel episode", "取消剧集"),
    "rd_task": ("Episode task", "剧集任务"),
    "rd_renders": ("Renders", "成片"),
    "rd_sidecar": ("About this render (sidecar JSON)", "成片信息（sidecar JSON）"),
    # storyboard toolbar (the cards' own buttons are server-built HTML: storyboard_view.VERBS)
    "sb_render": ("Render", "渲染"),
    "sb_reroll": ("Re-roll", "重抽"),
    "sb_up": ("←", "←"),
    "sb_down": ("→", "→"),
    "sb_insert": ("Insert", "插入"),
    "sb_split": ("Split", "拆分"),
    "sb_merge": ("Merge next", "合并下一场"),
    # draft
    "dr_text": ("Chapter or script", "章节或剧本"),
    "dr_text_ph": ("Paste a chapter or a page of script…", "粘贴一章小说或一页剧本…"),
    "dr_offline": ("offline (rule-based)", "离线规则（offline）"),
    "dr_engine": ("Drafting engine", "起草引擎"),
    "dr_scenes": ("Scenes", "场景数"),
    "dr_seconds": ("Seconds", "时长（秒）"),
    "dr_into": ("Into the open project", "加入当前项目"),
    "dr_after": ("After scene (empty = at the end)", "插在此场景之后（空 = 末尾）"),
    "dr_title": ("New project title", "新项目标题"),
    "dr_go": ("Draft", "起草"),
    "dr_result": ("Result", "结果"),
    **{f"style_{s.id}": (s.name_en, s.name_zh) for s in STYLES.values()},
}

# Words the handlers write into Markdown, HTML and errors (``say(key, lang, **fields)``).
SAID: dict[str, tuple[str, str]] = {
    "choose_image": ("Choose an image first.", "先选择一张图片。"),
    "save_character_first": ("Save the character first.", "先保存角色。"),
    "write_line_first": ("Write a narration or a line first, then pick it.", "先写一句旁白或台词，再选中它。"),
    "cached_line": ("cached: already made, played as it is", "已合成过，直接播放"),
    "cached": ("cached", "已合成"),
    "narrator": ("narrator", "旁白"),
    "click_candidate": ("Click a candidate first.", "先点选一张候选图。"),
    "design_started": ("{n} job(s) · refresh to see them", "{n} 个任务 · 刷新查看"),
    "reference": ("reference", "参考"),
    "bad_json": ("engine_params: not valid JSON ({msg}, line {line})", "引擎参数不是有效的 JSON（{msg}，第 {line} 行）"),
    "music_saved": ("project.yaml: music", "project.yaml：音乐"),
    "file_too_long": ("The file is too long: at most {n} characters.", "文件过长，最多 {n} 字。"),
    "file_not_text": ("The file is not UTF-8 or GB18030 text.", "文件不是 UTF-8 或 GB18030 文本。"),
    "open_project_first": ("Open a project first, or untick “Into the open project”.",
                           "请先打开项目，或取消勾选“加入当前项目”。"),
    "reused_legend": ("♻ = reused an earlier result", "♻ = 复用已有结果"),
    "new_scene_prompt": ("a new scene", "新场景"),
}
HEADERS = {"en": ["#", "ID", "Title", "s", "Characters", "Engine", "Plan"],
           "zh": ["#", "ID", "标题", "秒", "角色", "引擎", "计划"]}


def say(key: str, lang: str, **fields) -> str:
    en, zh = SAID[key]
    return (zh if lang == "zh" else en).format(**fields)


# The planner's notes (profiles/plan.py) and the episode's progress lines (app/episode_steps.py), English
# in the API: the page shows them in Chinese through these patterns (an unknown line stays as it is).
NOTES_ZH = [
    (r"(?P<e>\S+) makes text-to-video: the keyframe or the reference face is not used",
     "{e} 只做文生视频：关键帧或参考脸不会被使用"),
    (r"the still keeps the face of (?P<c>\S+) \(one face per still\)", "定妆图保持 {c} 的脸（每张图一张脸）"),
    (r"(?P<c>\S+) has no reference face: text-to-video \(add one in (?P<f>\S+) for the same face in every scene\)",
     "{c} 没有参考脸：文生视频（在 {f} 中添加一张，每个场景都是同一张脸）"),
    (r"(?P<e>\S+) chooses the clip length; it is trimmed or held to (?P<s>[\d.]+) s",
     "{e} 自行决定片段长度；会裁剪或定格到 {s} 秒"),
    (r"reuses the video of job (?P<j>\S+) \(nothing is rendered\)", "复用任务 {j} 的视频（不重新渲染）"),
    (r"reuses the clip of scene (?P<s>\S+) \(one job serves both; it is trimmed or held to (?P<d>[\d.]+) s\)",
     "复用场景 {s} 的片段（一个任务两处用；裁剪或定格到 {d} 秒）"),
    (r"starts from the last frame of scene (?P<p>\S+)'s clip: it re-renders whenever (?P=p) does",
     "从场景 {p} 片段的最后一帧开始：{p} 重新渲染时它也会重新渲染"),
    (r"(?P<e>\S+) also returns the clip's last frame, for the scene that continues from it",
     "{e} 同时返回片段的最后一帧，供接续的场景使用"),
    (r"scene (?P<s>\S+): (?P<step>\S+) on (?P<e>\S+)", "场景 {s}：{step}（{e}）"),
    (r"waiting for the queue", "等待队列"),
    (r"done", "完成"),
    (r"done: (?P<f>.+)", "完成：{f}"),
]


def plan_note(note: str, lang: str) -> str:
    """A planner note or an episode progress line in the page's language."""
    if lang != "zh" or not note:
        return note or ""
    for pattern, zh in NOTES_ZH:
        m = re.fullmatch(pattern, note)
        if m:
            return zh.format(**m.groupdict())
    return note


STEPS_ZH = {"still": "定妆图", "clip": "片段"}


def step_name(step: str, lang: str) -> str:
    """A plan step (still, clip, tts<N>; or "<step>: <engine>") in the page's language."""
    if lang != "zh":
        return step
    name, sep, rest = step.partition(": ")
    zh = "语音" + name[3:] if name.startswith("tts") else STEPS_ZH.get(name, name)
    return zh + sep + rest
