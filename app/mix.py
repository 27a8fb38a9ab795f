"""The episode's one audio track, as an ffmpeg filtergraph: speech, clip sound, ducked music, loudness.

    render_mix(timeline, clips, work, music=, music_volume=, ducking=, clip_audio=) -> Path | None
    measure(wav) -> dict            loudnorm's first pass (EBU R128)
    loudnorm_filter(measured) -> str   the second pass, for the stitch's encode (-16 LUFS, -1.5 dBTP)

The mix (48 kHz stereo float WAV, exactly the episode's length):

* speech: each utterance levelled to the same loudness and placed at its planned time (``adelay``);
* clip sound (``clip_audio: keep``, clips that have it): each scene's share of its clip, faded in and
  out over the scene's crossfades and overlapped like the video, so sound crossfades with picture;
* music: looped (``-stream_loop``) and cut to the episode, at ``music_volume`` against speech;
* ducking: clip sound and music go through ``sidechaincompress`` keyed by the speech. Only part of
  the bed is compressed, so ducking is deep (≈ 10 dB) but never silences the bed.

An episode with no speech, no music and no clip sound gets no audio track at all (as before issue 15).
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np

from core.errors import EngineError
from core.stitch import error_lines, ffmpeg_exe
from profiles.timeline import Timeline
from core.platform import no_window

RATE = 48000
FORMAT = f"aresample={RATE},aformat=sample_fmts=fltp:sample_rates={RATE}:channel_layouts=stereo"
SPEECH_DB = -20.0  # level of each utterance before the final loudness normalisation
CLIP_LEVEL = 0.5  # clip sound against speech
DUCK_KEEP = 0.3  # share of the bed that is never ducked: -10.5 dB while anyone speaks
TARGET_I, TARGET_TP, TARGET_LRA = -16.0, -1.5, 20.0


def has_audio(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as c:
            return bool(c.streams.audio)
    except av.FFmpegError:
        return False


def active_db(path: Path, seconds: float | None = None) -> float | None:
    """RMS level (dBFS) of the parts of a file that are not silent; None for silence or no sound."""
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "16000"]
    if seconds:
        cmd += ["-t", f"{seconds:.3f}"]
    proc = subprocess.run([*cmd, "-f", "f32le", "-"], capture_output=True, check=False, creationflags=no_window())
    x = np.frombuffer(proc.stdout, np.float32).astype(np.float64)
    if x.size < 160:
        return None
    blocks = x[: x.size // 800 * 800].reshape(-1, 800) if x.size >= 800 else x[None, :]
    power = (blocks ** 2).mean(axis=1)
    loud = power[power > 10 ** (-50 / 10)]
    if loud.size == 0:
        return None
    return float(10 * math.log10(loud.mean()))


def _gain(level: float | None, target_db: float) -> float:
    if level is None:
        return 1.0
    return float(10 ** (max(-30.0, min(30.0, target_db - level)) / 20))


def samples(seconds: float) -> int:
    return max(0, round(seconds * RATE))


def mix_graph(timeline: Timeline, clips: list[Path | None], speech_inputs: dict[int, int], clip_inputs: dict[int, int],
              music_input: int | None, gains: dict, music_volume: float, ducking: bool) -> str | None:
    """The filtergraph (output ``[mix]``); inputs are given by their index on the command line."""
    total = samples(timeline.duration)
    fps = timeline.fps
    parts: list[str] = []
    speech, beds = [], []
    for k, placed in enumerate(timeline.speech):
        if k not in speech_inputs:
            continue
        at = samples(placed.start)
        parts.append(f"[{speech_inputs[k]}:a]{FORMAT},asetpts=PTS-STARTPTS,volume={gains['speech'][k]:.5f},"
                     f"adelay=delays={at}S:all=1[sp{k}]")
        speech.append(f"[sp{k}]")
    scenes = timeline.scenes
    for i, scene in enumerate(scenes):
        if i not in clip_inputs:
            continue
        n = samples(scene.duration)
        fade_in = scene.fade_in / fps
        fade_out = scenes[i + 1].fade_in / fps if i + 1 < len(scenes) else 0.0
        chain = (f"[{clip_inputs[i]}:a]{FORMAT},asetpts=PTS-STARTPTS,atrim=end_sample={n},apad=whole_len={n},"
                 f"volume={gains['clip'][i]:.5f}")
        if fade_in:
            chain += f",afade=t=in:st=0:d={fade_in:.6f}"
        if fade_out:
            chain += f",afade=t=out:st={scene.duration - fade_out:.6f}:d={fade_out:.6f}"
        parts.append(chain + f",adelay=delays={samples(scene.start)}S:all=1[cl{i}]")
        beds.append(f"[cl{i}]")
    if music_input is not None:
        parts.append(f"[{music_input}:a]{FORMAT},asetpts=N/SR/TB,volume={gains['music'] * music_volume:.5f},"
                     f"atrim=end_sample={total}[music]")
        beds.append("[music]")
    if not speech and not beds:
        return None
    out = []
    if speech:
        parts.append(_sum(speech, "speech"))
        out.append("[speech]")
    if beds:
        parts.append(_sum(beds, "bed"))
        if speech and ducking:
            parts[-1] = parts[-1][: -len("[bed]")] + "[bedin]"
            parts[-2] = parts[-2][: -len("[speech]")] + "[speechin]"
            parts.append("[speechin]asplit=2[speech][key0]")
            parts.append("[key0]volume=10[key]")  # the key only listens: quiet voices still duck
            parts.append(f"[bedin]asplit=2[keep0][duck0];[keep0]volume={DUCK_KEEP}[keep];"
                         f"[duck0]volume={1 - DUCK_KEEP}[duck1];"
                         "[duck1][key]sidechaincompress=threshold=0.02:ratio=20:attack=5:release=300:makeup=1[duck2];"
                         "[keep][duck2]amix=inputs=2:normalize=0:duration=longest[bed]")
        out.append("[bed]")
    parts.append(f"{''.join(out)}amix=inputs={len(out)}:normalize=0:duration=longest,"
                 f"apad=whole_len={total},atrim=end_sample={total}[mix]" if len(out) > 1 else
                 f"{out[0]}apad=whole_len={total},atrim=end_sample={total}[mix]")
    return ";".join(parts)


def _sum(labels: list[str], name: str) -> str:
    if len(labels) == 1:
        return f"{labels[0]}anull[{name}]"
    return f"{''.join(labels)}amix=inputs={len(labels)}:normalize=0:duration=longest[{name}]"


def render_mix(timeline: Timeline, clips: list[Path | None], work: Path, *, music: Path | None = None,
               music_volume: float = 0.3, ducking: bool = True, clip_audio: str = "keep") -> Path | None:
    """Write ``work/mix.wav`` (None when the episode has nothing to hear)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error"]
    index, speech_inputs, clip_inputs = 0, {}, {}
    gains: dict = {"speech": {}, "clip": {}, "music": 1.0}
    for k, placed in enumerate(timeline.speech):
        path = placed.utterance.path
        if path is None or not Path(path).is_file() or placed.utterance.duration <= 0:
            continue
        gains["speech"][k] = _gain(active_db(Path(path)), SPEECH_DB)
        cmd += ["-i", str(path)]
        speech_inputs[k], index = index, index + 1
    if clip_audio == "keep":
        for i, path in enumerate(clips):
            if path is not None and has_audio(path):
                level = active_db(path, timeline.scenes[i].duration)
                if level is None:
                    continue
                gains["clip"][i] = _gain(level, SPEECH_DB + 20 * math.log10(CLIP_LEVEL))
                cmd += ["-i", str(path)]
                clip_inputs[i], index = index, index + 1
    music_input = None
    if music is not None and music_volume > 0:
        gains["music"] = _gain(active_db(music, 120.0), SPEECH_DB)
        cmd += ["-stream_loop", "-1", "-i", str(music)]
        music_input = index
    graph = mix_graph(timeline, clips, speech_inputs, clip_inputs, music_input, gains, music_volume, ducking)
    if graph is None:
        return None
    target = work / "mix.wav"
    cmd += ["-filter_complex", graph, "-map", "[mix]", "-c:a", "pcm_f32le", str(target)]
    _run(cmd, "mix the episode's sound", "混音")
    return target


def _run(cmd: list[str], what: str, what_zh: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL, check=False,
                          creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    if proc.returncode != 0:
        detail = " | ".join(error_lines(proc.stderr))[:600]
        raise EngineError(f"ffmpeg could not {what} (exit {proc.returncode}): {detail}",
                          f"ffmpeg {what_zh}失败（退出码 {proc.returncode}）：{detail}")
    return proc


def measure(wav: Path) -> dict | None:
    """loudnorm's first pass over the mix; None when it is silent."""
    proc = _run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-i", str(wav), "-af",
                 f"loudnorm=I={TARGET_I}:TP={TARGET_TP}:LRA={TARGET_LRA}:print_format=json", "-f", "null", "-"],
                "measure the episode's loudness", "测量响度")
    text = proc.stderr
    data = json.loads(text[text.rindex("{"):text.rindex("}") + 1])
    if data.get("input_i") in (None, "-inf") or float(data["input_i"]) < -70:
        return None
    return data


def loudnorm_filter(measured: dict | None) -> str:
    """The second pass: linear gain to -16 LUFS where the peaks allow it (loudnorm limits otherwise)."""
    if measured is None:
        return "anull"
    return (f"loudnorm=I={TARGET_I}:TP={TARGET_TP}:LRA={TARGET_LRA}:measured_I={measured['input_i']}:"
            f"measured_TP={measured['input_tp']}:measured_LRA={measured['input_lra']}:"
            f"measured_thresh={measured['input_thresh']}:offset={measured['target_offset']}:linear=true")
