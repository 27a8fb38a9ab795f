"""Stitch + mix speed (issue 15): a 6-scene and a 30-scene episode, as a real-time factor.

Each scene: a generated 832x480 clip at 16 fps (4 s, like a local Wan clip), narration and one line of
dialogue (tone-burst WAVs standing in for TTS), crossfades with a cut every fifth scene, looped music
with ducking, subtitles written to files. Timed: ``app.episode_render.render`` — timeline, mix,
loudness measurement, subtitles and the H.264/AAC encode — not the making of the inputs.
RTF = render seconds / episode seconds (below 1: faster than real time).

    python bench/episode.py [--scenes 6 30] [--burn]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import episode_render  # noqa: E402
from core.stitch import Clip  # noqa: E402
from profiles.timeline import Utterance  # noqa: E402
from tests.projects.synth import make_clip, make_music, make_tone  # noqa: E402

W, H, FPS = 832, 480, 16


def build(folder: Path, scenes: int) -> tuple[list[Clip], list[list[Utterance]], Path]:
    clips, speech = [], []
    for i in range(scenes):
        clip = make_clip(folder / f"c{i}.mp4", 4.0, FPS, W, H, seed=i)
        clips.append(Clip(clip, 4.0, "cut" if i % 5 == 0 else "crossfade"))
        narration = make_tone(folder / f"n{i}.wav", 2.2, 200, [(0, 1.0), (1.2, 2.2)])
        line = make_tone(folder / f"l{i}.wav", 1.1, 260, [(0, 1.1)])
        speech.append([Utterance(narration, 2.2, text="夕阳之下，韩立御剑而起，穿过翻腾的云海。", speaker="narrator"),
                       Utterance(line, 1.1, text="前路漫漫，我自一往无前。", speaker="hanli")])
    return clips, speech, make_music(folder / "music.mp3", 20.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, nargs="+", default=[6, 30])
    ap.add_argument("--burn", action="store_true", help="burn the subtitles in (libass) as well")
    args = ap.parse_args()
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, {W}x{H} @ {FPS} fps, crossfades, speech + ducked music")
    print("scenes  episode_s  render_s  RTF")
    for n in args.scenes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            clips, speech, music = build(folder, n)
            t0 = time.perf_counter()
            result = episode_render.render(clips, speech, folder, fps=FPS, width=W, height=H, fade=0.5, music=music,
                                           audio={"subtitles": "burn" if args.burn else "file"})
            took = time.perf_counter() - t0
            print(f"{n:6d}  {result['duration']:9.1f}  {took:8.1f}  {took / result['duration']:.3f}")


if __name__ == "__main__":
    main()
