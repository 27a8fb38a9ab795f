"""The sound side of a plan: one ``tts<index>`` step per spoken line (its voice engine checked up
front), the episode's audio settings (timing, subtitles, music) and the fixed-timing fit check."""

from __future__ import annotations

from core.errors import ProfileError, ValidationError
from profiles import timeline
from profiles.timeline import SceneInput, Utterance, estimate_seconds

from .plan_engines import lookup, usable
from .plan_steps import ScenePlan, StepPlan
from .project import PROJECT_FILE, Project
from .voices import speech_lines, speech_request, voice_source


def plan_speech(project: Project, engines: dict, scene, check) -> tuple[list[dict], list[StepPlan]]:
    """The scene's lines (``speech_json``) and one ``tts<index>`` step per line, each voice engine
    checked now: unknown, not a speech engine, not available, or a line it cannot say is refused here."""
    speech, steps = [], []
    for line in speech_lines(project, scene):
        where = voice_source(project, line)
        who = "the narration" if not line.character else f"line {line.index} ({line.speaker})"
        who_zh = "旁白" if not line.character else f"第 {line.index} 句（{line.speaker}）"
        engine = lookup(engines, line.voice.engine, where)
        if "tts" not in engine.tasks:
            file, _, fld = where.partition(" ")
            raise ProfileError(f"{file} → {fld}: {engine.id} is not a speech engine. Fix: use a text-to-speech engine "
                               "(local-tts, dashscope-tts, tencent-tts).",
                               f"{file} → {fld}：{engine.id} 不是语音引擎。请使用语音合成引擎（local-tts、dashscope-tts、"
                               "tencent-tts）。", file=file, field=fld)
        usable(engine, where, f"Scene '{scene.id}' ({who})", f"场景“{scene.id}”的{who_zh}")
        request = speech_request(project.id, line)
        try:
            check(request, [])
        except ValidationError as exc:
            raise ValidationError(
                f"Scene '{scene.id}', {who} on {engine.id}: {exc.en.rstrip('.')}. Fix: change the text in "
                f"{project.config.scene_profiles} or the voice in {where.replace(' ', ' → ', 1)}.",
                f"场景“{scene.id}”{who_zh}（{engine.id}）：{exc.zh} 请修改 {project.config.scene_profiles} 中的文字，"
                f"或 {where.replace(' ', ' → ', 1)} 中的声音。") from None
        speech.append(speech_json(line))
        steps.append(StepPlan(f"tts{line.index}", engine.id, request))
    return speech, steps



def speech_json(line) -> dict:
    return {"index": line.index, "speaker": line.speaker, "character": line.character, "text": line.text,
            "voice": line.voice.model_dump(mode="json"), "at": line.at,
            "estimate": round(estimate_seconds(line.text, line.voice.speed), 3)}


def audio_settings(project: Project) -> dict:
    cfg = project.config
    music = None
    if cfg.music:
        path = project.asset(cfg.music)
        if not path.is_file():
            raise ProfileError(f"{PROJECT_FILE} → music: assets/{cfg.music} does not exist. Fix: put the file there "
                               "(or upload it in the Projects tab) or remove music.",
                               f"{PROJECT_FILE} → music：assets/{cfg.music} 不存在。请放入该文件或删除 music。",
                               file=PROJECT_FILE, field="music")
        music = f"assets/{cfg.music}"
    return {"timing": cfg.timing, "speech_padding": cfg.speech_padding, "subtitles": cfg.subtitles,
            "subtitle_style": cfg.subtitle_style.model_dump(mode="json"), "music": music,
            "music_volume": cfg.music_volume, "ducking": cfg.ducking, "clip_audio": cfg.clip_audio}


def check_speech_fits(plans: list[ScenePlan], cfg) -> None:
    """With ``timing: fixed``, refuse before anything runs when the (estimated) speech cannot fit a scene."""
    if cfg.timing != "fixed" or not any(sp.speech for sp in plans):
        return
    scenes = [SceneInput(sp.scene, sp.duration, sp.transition,
                         tuple(Utterance(None, line["estimate"], at=line["at"]) for line in sp.speech)) for sp in plans]
    timeline.plan(scenes, fps=cfg.fps, fade=cfg.transition_duration, timing="fixed", padding=cfg.speech_padding)
