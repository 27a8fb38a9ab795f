"""The episode as a 剪映 (Jianying / CapCut China) draft, built with pyJianYingDraft.

    write_draft(plan, clips, music, srt, folder, name, width, height) -> the draft's folder

The draft (``folder/name/draft_content.json`` + ``draft_meta_info.json``) references the clip,
speech and music files where they are; copy the folder into 剪映's drafts folder (e.g.
``%LOCALAPPDATA%/JianyingPro/User Data/Projects/com.lveditor.draft``) to open it there.
Tracks: the scenes' clips (叠化 transitions for crossfades; a clip shorter than its scene is
slowed to fill it, as 剪映 cannot hold a last frame), speech (one track per overlapping voice),
music (repeated to the episode's length) and the subtitles from the .srt.
"""

from __future__ import annotations

from pathlib import Path

from profiles.timeline import Timeline

US = 1_000_000


def available() -> bool:
    try:
        import pyJianYingDraft  # noqa: F401
    except ImportError:
        return False
    return True


def write_draft(plan: Timeline, clips: list[Path], music: Path | None, srt: Path | None, folder: Path, name: str,
                width: int, height: int) -> Path:
    import pyJianYingDraft as jy

    fps = plan.fps

    def us(frames: float) -> int:
        return round(frames * US / fps)

    draft = jy.DraftFolder(str(folder)).create_draft(name, width, height, fps=fps, allow_replace=True)
    draft.append_track(jy.TrackSpec(jy.TrackType.video, "clips"))
    scenes = plan.scenes
    at = 0
    for i, (scene, file) in enumerate(zip(scenes, clips)):
        nxt = scenes[i + 1].fade_in if i + 1 < len(scenes) else 0
        length = us(scene.frames - nxt)
        material = jy.VideoMaterial(str(Path(file).resolve()))
        source = min(length, material.duration)
        segment = jy.VideoSegment(material, jy.Timerange(at, length), source_timerange=jy.Timerange(0, source),
                                  speed=source / length, volume=1.0)
        if nxt:
            segment.add_transition(jy.TransitionType.叠化, duration=us(nxt))
        draft.add_segment(segment, "clips")
        at += length

    lanes: list[int] = []  # the end (µs) of each speech track so far
    for placed in plan.speech:
        u = placed.utterance
        if u.path is None:
            continue
        start = round(placed.start * US)
        material = jy.AudioMaterial(str(Path(u.path).resolve()))
        length = min(round(u.duration * US), material.duration)
        lane = next((k for k, end in enumerate(lanes) if end <= start), None)
        if lane is None:
            lane = len(lanes)
            lanes.append(0)
            draft.append_track(jy.TrackSpec(jy.TrackType.audio, f"speech{lane + 1}"))
        draft.add_segment(jy.AudioSegment(material, jy.Timerange(start, length)), f"speech{lane + 1}")
        lanes[lane] = start + length

    if music is not None:
        material = jy.AudioMaterial(str(Path(music).resolve()))
        draft.append_track(jy.TrackSpec(jy.TrackType.audio, "music"))
        total, at = us(plan.total_frames), 0
        while at < total and material.duration > 0:
            length = min(material.duration, total - at)
            draft.add_segment(jy.AudioSegment(material, jy.Timerange(at, length), volume=0.5), "music")
            at += length

    if srt is not None:
        draft.import_srt(str(srt), track_name="subtitles")
    draft.save()
    return folder / name
