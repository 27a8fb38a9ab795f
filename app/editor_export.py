"""The episode's timeline for an editor (DaVinci Resolve, Premiere, 剪映 through an OTIO import):
OpenTimelineIO, referencing the clip, speech and music files where they already are (nothing copied).

    write_otio(plan, clips, music, path, name)    plan: profiles.timeline.Timeline, clips: the scenes' files

Tracks: Video (each scene's clip, crossfades as transitions), Speech (one track per overlapping
voice), Music (the file repeated to the episode's length). Subtitle cues become markers on the
video track (name = the text, range = the cue). Rates are the episode's fps.

Crossfades: OTIO lays clips end to end and lets a transition reach into the clips' hidden handles,
so scene ``i`` is cut where the next one starts fading in and the transition covers the ``f`` frames
after the cut (``in_offset`` 0, ``out_offset`` f) — the outgoing clip's remaining frames are its handle.
"""

from __future__ import annotations

from pathlib import Path

from .subtitles import Cue
from profiles.timeline import Timeline


def available() -> bool:
    try:
        import opentimelineio  # noqa: F401
    except ImportError:
        return False
    return True


def media_seconds(path: Path) -> float | None:
    import av

    try:
        with av.open(str(path)) as c:
            if c.duration:
                return c.duration / 1_000_000
    except av.FFmpegError:
        return None
    return None


def write_otio(plan: Timeline, clips: list[Path], cues: list[Cue], music: Path | None, path: Path, name: str) -> Path:
    import opentimelineio as otio

    fps = plan.fps

    def rt(frames: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(frames, fps)

    def span(start: float, frames: float) -> otio.opentime.TimeRange:
        return otio.opentime.TimeRange(rt(start), rt(frames))

    def ref(file: Path, seconds: float | None = None) -> otio.schema.ExternalReference:
        available_range = span(0, round(seconds * fps)) if seconds else None
        return otio.schema.ExternalReference(target_url=Path(file).resolve().as_uri(), available_range=available_range)

    timeline = otio.schema.Timeline(name=name, global_start_time=rt(0))
    video = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    scenes = plan.scenes
    for i, (scene, file) in enumerate(zip(scenes, clips)):
        nxt = scenes[i + 1].fade_in if i + 1 < len(scenes) else 0
        if scene.fade_in:
            video.append(otio.schema.Transition(name=f"crossfade {scene.id}",
                                                transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                                                in_offset=rt(0), out_offset=rt(scene.fade_in)))
        video.append(otio.schema.Clip(name=scene.id, media_reference=ref(file, media_seconds(file)),
                                      source_range=span(0, scene.frames - nxt)))
    for k, cue in enumerate(cues):
        cue_range = span(round(cue.start * fps), max(1, round((cue.end - cue.start) * fps)))
        video.markers.append(otio.schema.Marker(name="\n".join(cue.lines), color=otio.schema.MarkerColor.YELLOW,
                                                marked_range=cue_range,
                                                metadata={"xianying": {"subtitle": k + 1, "speaker": cue.speaker}}))
    timeline.tracks.append(video)

    lanes: list[list] = []  # per speech track: [(start frame, end frame), ...]
    tracks: list = []
    for placed in plan.speech:
        u = placed.utterance
        if u.path is None:
            continue
        a, n = round(placed.start * fps), max(1, round(u.duration * fps))
        for lane, track in zip(lanes, tracks):
            if lane[-1][1] <= a:
                break
        else:
            lane = [(0, 0)]
            track = otio.schema.Track(name=f"Speech {len(tracks) + 1}", kind=otio.schema.TrackKind.Audio)
            lanes.append(lane)
            tracks.append(track)
        if a > lane[-1][1]:
            track.append(otio.schema.Gap(source_range=span(0, a - lane[-1][1])))
        track.append(otio.schema.Clip(name=f"{u.speaker}: {u.text[:40]}", media_reference=ref(u.path, u.duration),
                                      source_range=span(0, n),
                                      metadata={"xianying": {"text": u.text, "speaker": u.speaker}}))
        lane.append((a, a + n))
    for track in tracks:
        timeline.tracks.append(track)

    if music is not None:
        seconds = media_seconds(music) or plan.duration
        each = max(1, round(seconds * fps))
        track = otio.schema.Track(name="Music", kind=otio.schema.TrackKind.Audio)
        left = plan.total_frames
        while left > 0:
            track.append(otio.schema.Clip(name=music.name, media_reference=ref(music, seconds),
                                          source_range=span(0, min(each, left))))
            left -= each
        timeline.tracks.append(track)
    otio.adapters.write_to_file(timeline, str(path))
    return path
