"""The stitch job's work, start to end: plan the timeline, mix the sound, write subtitles, stitch.

    render(scenes, speech, work, fps=, width=, height=, fade=, audio=, ...) -> dict

``scenes``: the episode's clips in order (``core.stitch.Clip``: file, planned duration, transition);
``speech``: per scene, the synthesised lines (``profiles.timeline.Utterance``). ``audio`` is the plan's
audio settings (``profiles.plan.audio_settings``: timing, speech_padding, subtitles,
subtitle_style, music, music_volume, ducking, clip_audio). Writes ``work/episode.mp4`` and, unless
subtitles are off or nobody speaks, ``work/episode.srt`` and ``work/episode.ass``; and
``work/episode.otio`` (the timeline for an editor, ``app.editor_export``) when opentimelineio is installed,
and a 剪映 draft folder (``app.jianying_export``) when pyJianYingDraft is.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from profiles import timeline

from . import editor_export, jianying_export, mix, subtitles
from core.stitch import Clip, has_filter, output_size, stitch
from core.platform import move_dir, replace_with_retry

log = logging.getLogger(__name__)

DEFAULT_AUDIO = {"timing": "voice", "speech_padding": 0.3, "subtitles": "file", "subtitle_style": {},
                 "music": None, "music_volume": 0.3, "ducking": True, "clip_audio": "keep"}


def speech_from_outputs(lines: list[dict], outputs: list[dict | None], workspace: Path) -> list[timeline.Utterance]:
    """Utterances from a scene's planned lines (text, speaker, at) and its TTS jobs' first outputs
    (``{"file", "duration", "timings"?}``, file relative to the workspace); lines without output are left out."""
    out = []
    for line, output in zip(lines, outputs):
        if not output or not output.get("file"):
            continue
        duration = output.get("duration") or (output.get("meta") or {}).get("duration")
        timings = output.get("timings") or (output.get("meta") or {}).get("timings") or ()
        out.append(timeline.Utterance(workspace / output["file"], float(duration or 0.0),
                                      tuple((float(a), float(b), str(t)) for a, b, t in timings),
                                      line.get("text", ""), line.get("speaker", ""), line.get("at")))
    return out


def _fonts_here(font: subtitles.Font, work: Path) -> Path:
    """The font's folder as ``work/fonts`` (a link, or a copy of the one file where links are not allowed)."""
    link = work / "fonts"
    if link.exists() or link.is_symlink():
        return link
    try:
        os.symlink(font.folder, link, target_is_directory=True)  # posix-ok: OSError falls back below
    except OSError:
        link.mkdir()
        shutil.copy2(font.path, link / font.path.name)
    return link


def _exports(plan, clips, cues, music, srt, work: Path, size, title: str, notes: list[str]):
    """The editor hand-off files; a failure here is a note on the render, never a failed episode."""
    otio = jianying = None
    files = [c.path for c in clips]
    if not editor_export.available():
        notes.append("no .otio written: install opentimelineio for the editor hand-off")
    else:
        try:
            otio = editor_export.write_otio(plan, files, cues, music, work / "episode.otio", title)
        except Exception as exc:  # a media file the library cannot read: the MP4 is still good
            log.warning("otio export failed", exc_info=True)
            notes.append(f"no .otio written: {type(exc).__name__}: {exc}")
    if not jianying_export.available():
        notes.append("no 剪映 draft written: install pyJianYingDraft for it")
    else:
        try:
            (work / "drafts").mkdir(exist_ok=True)
            jianying = jianying_export.write_draft(plan, files, music, srt, work / "drafts", "draft", *size)
        except Exception as exc:
            log.warning("jianying export failed", exc_info=True)
            notes.append(f"no 剪映 draft written: {type(exc).__name__}: {exc}")
    return otio, jianying


def render(scenes: list[Clip], speech: list[list[timeline.Utterance]], work: Path, *, fps: int, width: int,
           height: int, fade: float = 0.5, upscale: bool = False, audio: dict | None = None,
           music: Path | None = None, font_dirs: list[Path] = (), metadata: dict | None = None,
           progress=None, cancelled=None, ids: list[str] | None = None) -> dict:
    """``ids``: the scenes' names for messages (default: their positions)."""
    settings = {**DEFAULT_AUDIO, **(audio or {})}
    ids = list(ids) if ids else [str(i) for i in range(len(scenes))]
    inputs = [timeline.SceneInput(ids[i], c.duration, c.transition if i else "cut",
                                  tuple(speech[i]) if i < len(speech) else ()) for i, c in enumerate(scenes)]
    notes: list[str] = []
    try:
        plan = timeline.plan(inputs, fps=fps, fade=fade, timing=settings["timing"], padding=settings["speech_padding"])
    except timeline.TimingError as exc:
        # the plan checked estimates before anything ran; the real voices came out longer. Everything is
        # rendered by now, so hold those scenes longer rather than throw the work away — and say so.
        plan = timeline.plan(inputs, fps=fps, fade=fade, timing="voice", padding=0.0)
        notes.append(f"timing: fixed could not hold: {exc.en} Those scenes were held longer instead.")
    clips = [Clip(c.path, s.duration, c.transition if i else "cut")
             for i, (c, s) in enumerate(zip(scenes, plan.scenes))]
    wav = mix.render_mix(plan, [c.path for c in clips], work, music=music, music_volume=settings["music_volume"],
                         ducking=settings["ducking"], clip_audio=settings["clip_audio"])
    measured = mix.measure(wav) if wav is not None else None
    cues = subtitles.cues_for(plan) if settings["subtitles"] != "off" else []
    srt = ass = burn = fonts = None
    if cues:
        style = settings.get("subtitle_style") or {}
        font = subtitles.find_cjk_font(list(font_dirs), style.get("font", ""))
        out_w, out_h = output_size(width, height, upscale)
        srt = subtitles.write_srt(cues, work / "episode.srt")
        ass = subtitles.write_ass(cues, work / "episode.ass", out_w, out_h, style, font)
        if settings["subtitles"] == "burn":
            if not has_filter("subtitles"):
                notes.append("subtitles not burned in: this ffmpeg has no libass (subtitles filter); the .srt/.ass "
                             "files are written")
            elif font is None and subtitles.needs_cjk(cues):
                notes.append("subtitles not burned in: no Chinese font was found (install Noto Sans CJK, or put a "
                             ".ttf/.otf in the workspace's fonts folder); the .srt/.ass files are written")
            else:
                burn, fonts = ass, (_fonts_here(font, work) if font else None)
    result = stitch(clips, work / "episode.mp4", fps=fps, width=width, height=height, fade=fade, upscale=upscale,
                    metadata=metadata, progress=progress, cancelled=cancelled, audio=wav,
                    audio_filter=mix.loudnorm_filter(measured), subtitles=burn, fontsdir=fonts)
    otio, jianying = _exports(plan, clips, cues, music, srt, work, output_size(width, height, upscale),
                              (metadata or {}).get("title", "episode"), notes)
    return {**result, "srt": srt, "ass": ass, "otio": otio, "jianying": jianying, "cues": len(cues), "notes": notes,
            "extended": [ids.index(i) for i in plan.extended],
            "scenes": [{"start": s.start, "duration": s.duration, "frames": s.frames} for s in plan.scenes],
            "speech": [{"scene": ids.index(p.scene), "start": round(p.start, 3), "end": round(p.end, 3),
                        "speaker": p.utterance.speaker, "text": p.utterance.text} for p in plan.speech]}


# --- the stitch job ---------------------------------------------------------------------------
def render_job(settings, plan: dict, clips: list[Clip], speech: dict, work: Path, **kw) -> dict:
    """``render`` for an episode plan (``EpisodePlan.to_json``); ``speech``: scene id → the stitch request's
    lines (``{"file", "duration", "timings", "text", "speaker", "at"}``, files relative to the workspace).
    The result is JSON-friendly (the timeline names scenes by id); srt/ass are still in ``work``."""
    from core.errors import NotFound

    audio = {**DEFAULT_AUDIO, **(plan.get("audio") or {})}
    music = None
    if audio.get("music"):
        music = settings.projects_dir / plan["project"] / audio["music"]
        if not music.is_file():
            raise NotFound(f"The music file {audio['music']} is gone from project '{plan['project']}'. Fix: put it "
                           "back, or remove music from project.yaml, and render again.",
                           f"项目“{plan['project']}”中的音乐文件 {audio['music']} 不见了。请放回该文件或删除 music 后重新渲染。")
    ids = [s["scene"] for s in plan["scenes"]]
    ws = settings.workspace
    lists = [[timeline.Utterance.from_json({**u, "path": u["file"]}, root=ws) for u in speech.get(sid, [])]
             for sid in ids]
    result = render(clips, lists, work, fps=plan["fps"], width=plan["width"], height=plan["height"],
                    fade=plan["transition_duration"], upscale=plan["upscale"], audio=audio, music=music,
                    font_dirs=[ws / "fonts"], ids=ids, **kw)
    scenes = result.pop("scenes")
    result["timeline"] = {
        "scenes": [{"scene": sid, **s} for sid, s in zip(ids, scenes)],
        "speech": [{**s, "scene": ids[s["scene"]]} for s in result.pop("speech")]}
    result["extended"] = [ids[i] for i in result["extended"]]
    return result


def publish_beside(result: dict, final: Path, workspace: Path) -> dict:
    """Move the subtitles and the editor timeline next to the published MP4 (same name, .srt / .ass / .otio);
    paths relative to the workspace."""
    out = {}
    for key in ("srt", "ass", "otio"):
        src = result.get(key)
        out[key] = None
        if src:
            dst = final.with_suffix(f".{key}")
            replace_with_retry(src, dst)
            out[key] = str(dst.relative_to(workspace))
    src = result.get("jianying")
    out["jianying"] = None
    if src:
        dst = final.with_name(f"{final.stem}_jianying")
        shutil.rmtree(dst, ignore_errors=True)
        move_dir(src, dst)
        out["jianying"] = str(dst.relative_to(workspace))
    return out
