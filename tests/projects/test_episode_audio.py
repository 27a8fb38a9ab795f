"""The finished episode: the real stitch + mix on generated clips, speech stand-ins (tone bursts) and
music, probed with ffmpeg — AAC track as long as the picture, subtitles from the script, speech
audible, music ducked under it, -16 LUFS, burned subtitles visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app import episode_render
from core.stitch import Clip
from app.subtitles import find_cjk_font, split_text
from profiles.timeline import Utterance
from tests.projects.synth import decode_audio, loudness, make_clip, make_music, make_tone, probe_av, rms_db

FPS, W, H = 16, 96, 64
MUSIC_HZ = (523.25, 659.25, 783.99)
SPEECH_HZ = 220.0


def band_db(x: np.ndarray, start: float, end: float, freqs, rate=48000) -> float:
    """Energy (dB) of ``x`` near ``freqs`` between ``start`` and ``end`` seconds."""
    part = x[int(start * rate):int(end * rate)].astype(np.float64)
    spec = np.abs(np.fft.rfft(part * np.hanning(part.size))) ** 2
    hz = np.fft.rfftfreq(part.size, 1 / rate)
    mask = np.zeros_like(hz, bool)
    for f in freqs:
        mask |= np.abs(hz - f) < 15
    return float(10 * np.log10(spec[mask].sum() / part.size + 1e-20))


def episode(tmp_path: Path, script: list[list[str]], subtitles: str = "file", music: bool = True,
            clip_audio: str = "keep") -> tuple[Path, dict]:
    work = tmp_path / f"work-{subtitles}-{music}-{clip_audio}"
    work.mkdir()
    clips = [Clip(make_clip(work / f"c{i}.mp4", 1.2, 12, 80, 60, {"rate": 44100, "channels": 1} if i == 1 else None,
                            seed=i), 2.5, "crossfade" if i % 2 else "cut") for i in range(len(script))]
    speech = []
    for i, lines in enumerate(script):
        utts = []
        for j, text in enumerate(lines):
            seconds = 1.0 + 0.5 * j
            wav = make_tone(work / f"s{i}-{j}.wav", seconds, SPEECH_HZ, [(0, seconds * 0.45), (seconds * 0.55, seconds)])
            utts.append(Utterance(wav, seconds, text=text, speaker="narrator" if j == 0 else "hanli"))
        speech.append(utts)
    track = make_music(work / "theme.mp3", 3.0) if music else None
    result = episode_render.render(clips, speech, work, fps=FPS, width=W, height=H, fade=0.5, music=track,
                                   audio={"subtitles": subtitles, "clip_audio": clip_audio})
    return work / "episode.mp4", result


SCRIPT = [[], ["仙界之上，云海翻涌。一卷金色古卷缓缓展开，一段凡人修仙的传说，从这里开始。", "这是哪里？"],
          ["韩师弟，看剑！"], [], ["前路漫漫，我自一往无前。"]]


def test_the_mix_speech_music_ducking_loudness_and_lengths(tmp_path):
    path, result = episode(tmp_path, SCRIPT)
    info = probe_av(path)
    video, audio = info["video"], info["audio"]
    assert audio is not None and audio["codec"] == "aac" and audio["rate"] == 48000 and audio["channels"] == 2
    assert video["frames"] == result["frames"]
    assert abs(audio["seconds"] - video["frames"] / FPS) <= 1 / FPS  # within one frame
    # subtitles: one cue per piece of the script (the long narration makes 2: 16-character lines, 2 per cue)
    srt = result["srt"].read_text(encoding="utf-8")
    blocks = [b for b in srt.strip().split("\n\n") if b.strip()]
    assert len(blocks) == result["cues"] == sum(len(split_text(t)) for lines in SCRIPT for t in lines) == 5
    assert all(len(line) <= 16 for b in blocks for line in b.splitlines()[2:])
    assert "韩师弟，看剑！" in srt and result["ass"].read_text(encoding="utf-8-sig").count("Dialogue:") == 5
    # speech audible where the plan put it; music ducked there against the music-only first scene
    x = decode_audio(path)
    speech = result["speech"]
    assert [s["scene"] for s in speech] == [1, 1, 2, 4]
    quiet_music = band_db(x, 0.3, 1.8, MUSIC_HZ)  # scene 0: nobody speaks
    for s in speech:
        a, b = s["start"] + 0.1, s["start"] + 0.4  # inside the first tone burst
        assert rms_db(x, a, b) > -30, s
        assert band_db(x, a, b, [SPEECH_HZ]) > band_db(x, 0.3, 1.8, [SPEECH_HZ]) + 20, s
        assert band_db(x, a, b, MUSIC_HZ) <= quiet_music - 6, (s, band_db(x, a, b, MUSIC_HZ), quiet_music)
    integrated, peak = loudness(path)
    assert -17.0 <= integrated <= -15.0 and peak <= -1.0, (integrated, peak)
    # voice timing: scene 1 (speech 1.0 + 0.2 gap + 1.5 s, + 0.3 padding; scene 2 is a cut) grew from 2.5 s
    assert result["extended"] == [1] and result["scenes"][1]["duration"] == 3.0
    for s, nxt in zip(speech, speech[1:]):
        assert s["end"] <= nxt["start"]


def test_burned_subtitles_show_on_the_frame(tmp_path):
    import av

    from core.stitch import has_filter

    assert has_filter("subtitles") and has_filter("ass")  # imageio-ffmpeg's build has libass
    script = [["The immortal realm, above a sea of clouds."], ["Han Li opens his eyes."]]
    burned, r1 = episode(tmp_path, script, "burn", music=False)
    plain, r2 = episode(tmp_path, script, "off", music=False)
    assert r1["subtitles_burned"] and not r2["subtitles_burned"] and r2["srt"] is None and r2["cues"] == 0
    cue = r1["speech"][1]
    frame_no = int((cue["start"] + cue["end"]) / 2 * FPS)

    def frame(path):
        with av.open(str(path)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i == frame_no:
                    return f.to_ndarray(format="rgb24").astype(int)

    diff = np.abs(frame(burned) - frame(plain))
    assert diff.max() > 100 and (diff > 40).mean() > 0.005  # white text with an outline, not noise
    assert probe_av(plain)["audio"]["codec"] == "aac"


def test_chinese_subtitles_are_never_burned_as_boxes(tmp_path):
    path, result = episode(tmp_path, [["仙界之上"], []], "burn", music=False)
    if find_cjk_font() is None:
        assert not result["subtitles_burned"] and "no Chinese font" in result["notes"][0]
    else:
        assert result["subtitles_burned"]
    assert result["srt"].is_file() and result["ass"].is_file()


def test_a_silent_episode_stays_silent_and_muted_clip_sound_is_dropped(tmp_path):
    path, result = episode(tmp_path, [[], [], []], music=False)  # clip 1 has sound: kept
    assert probe_av(path)["audio"]["codec"] == "aac" and result["srt"] is None
    path, result = episode(tmp_path, [[], [], []], music=False, clip_audio="mute")
    assert probe_av(path)["audio"] is None and not result["audio"]


def test_clip_sound_crossfades_with_the_picture(tmp_path):
    path, result = episode(tmp_path, [[], [], [], []], music=False)
    x = decode_audio(path)
    s1, s2 = result["scenes"][1], result["scenes"][2]
    assert rms_db(x, s1["start"] + 0.6, s2["start"] - 0.1) > -40  # clip 1's own sound plays in its scene
    assert rms_db(x, 0.0, s1["start"] - 0.01) < -70  # and nowhere before it
    assert rms_db(x, s2["start"] + 0.1, s2["start"] + 2.0) < -70  # nor after (scene 2 is a cut)
    fade_in = rms_db(x, s1["start"], s1["start"] + 0.1)
    assert fade_in < rms_db(x, s1["start"] + 0.6, s1["start"] + 0.7) - 6  # faded in over scene 1's crossfade


def test_the_editor_timeline_references_the_files_and_matches_the_render(tmp_path):
    import opentimelineio as otio

    path, result = episode(tmp_path, SCRIPT)
    tl = otio.adapters.read_from_file(str(result["otio"]))
    video = tl.video_tracks()[0]
    assert video.duration().to_frames() == result["frames"]  # transitions take no track time
    transitions = [x for x in video if isinstance(x, otio.schema.Transition)]
    assert len(transitions) == 2  # into scenes 1 and 3
    assert [m.name for m in video.markers][1] == srt_second_cue(result)
    speech = [c for t in tl.audio_tracks() if t.name.startswith("Speech") for c in t.find_clips()]
    assert len(speech) == len(result["speech"]) and len(video.markers) == result["cues"]
    for track in tl.tracks:
        for clip in track.find_clips():
            assert Path(clip.media_reference.target_url.removeprefix("file://")).is_file()
    music = next(t for t in tl.audio_tracks() if t.name == "Music")
    assert music.duration().to_frames() == result["frames"]


def srt_second_cue(result) -> str:
    block = result["srt"].read_text(encoding="utf-8").strip().split("\n\n")[1]
    return "\n".join(block.splitlines()[2:])


def test_the_jianying_draft_has_the_clips_speech_music_and_subtitles(tmp_path):
    import json

    path, result = episode(tmp_path, SCRIPT)
    content = json.loads((result["jianying"] / "draft_content.json").read_text(encoding="utf-8"))
    tracks = {t["name"]: t for t in content["tracks"]}
    clips = tracks["clips"]["segments"]
    assert len(clips) == len(result["scenes"])
    end = clips[-1]["target_timerange"]["start"] + clips[-1]["target_timerange"]["duration"]
    assert abs(end - result["duration"] * 1_000_000) <= 1_000_000 / FPS
    speech = [seg for name, t in tracks.items() if name.startswith("speech") for seg in t["segments"]]
    assert len(speech) == len(result["speech"]) and len(tracks["subtitles"]["segments"]) == result["cues"]
    assert tracks["music"]["segments"] and len(content["materials"]["transitions"]) == 2
    paths = [m["path"] for m in content["materials"]["videos"] + content["materials"]["audios"]]
    assert paths and all(Path(p).is_file() for p in paths)  # referenced where they are, not copied


def test_a_found_font_is_linked_for_libass_and_survives_the_work_folder(tmp_path, monkeypatch):
    """With a font found (here DejaVu, standing in for a CJK font on a box that has none), Chinese cues
    are burned with it through ``fontsdir``; cleaning the work folder removes the link, not the fonts."""
    import shutil

    from app import subtitles

    fonts = tmp_path / "system-fonts"
    fonts.mkdir()
    dejavu = next(Path("/usr/share/fonts").rglob("DejaVuSans.ttf"), None)
    if dejavu is None:
        pytest.skip("no DejaVu font on this machine")
    shutil.copy(dejavu, fonts / "DejaVuSans.ttf")
    monkeypatch.setattr(subtitles, "find_cjk_font", lambda *a, **k: subtitles.Font("DejaVu Sans", fonts / "DejaVuSans.ttf"))
    path, result = episode(tmp_path, [["仙界之上 Immortal realm"], []], "burn", music=False)
    assert result["subtitles_burned"] and not any("not burned" in n for n in result["notes"])
    work = path.parent
    assert (work / "fonts").resolve() == fonts.resolve() or (work / "fonts" / "DejaVuSans.ttf").is_file()
    shutil.rmtree(work)
    assert (fonts / "DejaVuSans.ttf").is_file()


def test_fixed_timing_overrun_by_real_voices_holds_the_scene_and_says_so(tmp_path):
    work = tmp_path / "fixed"
    work.mkdir()
    clips = [Clip(make_clip(work / "a.mp4", 1.0, 8, 32, 32), 1.0), Clip(make_clip(work / "b.mp4", 1.0, 8, 32, 32), 2.0)]
    speech = [[Utterance(make_tone(work / "u.wav", 1.6), 1.6, text="长了一点的台词")], []]
    result = episode_render.render(clips, speech, work, fps=8, width=32, height=32, audio={"timing": "fixed"})
    assert result["extended"] == [0] and result["scenes"][0]["duration"] == 1.625  # 13 frames: the speech fits
    assert "timing: fixed could not hold" in result["notes"][0] and "'0'" in result["notes"][0]
