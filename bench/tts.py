"""Real-time factor of ``local-tts`` (seconds of compute per second of speech; < 1 is faster than
real time), through the engine's own run() on the CPU, median of several runs after a warm-up.

    python bench/tts.py --model <folder>          # a downloaded Kokoro folder (the figure that matters)
    python bench/tts.py --tiny                    # the tests' tiny random-weight model (a sanity check only)
    python bench/tts.py --model <folder> --runs 5 --json bench-tts.json

Without --model or --tiny it uses <workspace>/models/local-tts (default workspace ./workspace).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXTS = {
    "zh": "青云山上，云海翻涌。少年握紧手中的木剑，望向远处的仙门。师父说过，修仙之路，先修其心。",
    "en": "The young swordsman climbed the misty mountain, where the immortals were said to dwell.",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a Kokoro model folder (sherpa-onnx format)")
    ap.add_argument("--tiny", action="store_true", help="build and use the tests' tiny random-weight model")
    ap.add_argument("--workspace", type=Path, default=ROOT / "workspace")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from app.settings import load_settings
    from engines.base import EngineRequest
    from engines.local.local_tts import LocalTtsEngine
    from engines.local.weights import PipelineCache

    tmp = Path(tempfile.mkdtemp(prefix="bench-tts-"))
    settings = load_settings(args.workspace if not args.tiny else tmp / "ws")
    if args.tiny:
        from tests.tiny_speech import build_tiny_kokoro

        settings.models["local-tts"] = str(build_tiny_kokoro(tmp / "tiny"))
    elif args.model:
        settings.models["local-tts"] = str(args.model)
    engine = LocalTtsEngine(settings, cache=PipelineCache(2**30))
    ok, reason = engine.available()
    if not ok:
        sys.exit(f"local-tts is not available: {reason}")

    results = {}
    for lang, text in TEXTS.items():
        def once(i: int) -> tuple[float, float]:
            work = tmp / f"{lang}-{i}"
            work.mkdir()
            req = EngineRequest("bench", "", "", engine.Params(text=text, voice="narrator"), work)
            t0 = time.perf_counter()
            out = engine.run(req, lambda *a, **k: None, lambda: False)[0]
            return time.perf_counter() - t0, out.duration

        t0 = time.perf_counter()
        once(-1)  # loads the model
        load_s = time.perf_counter() - t0
        runs = [once(i) for i in range(args.runs)]
        rtf = statistics.median(s / d for s, d in runs)
        results[lang] = {"rtf": round(rtf, 4), "audio_s": round(runs[0][1], 2),
                         "synth_s": round(statistics.median(s for s, _ in runs), 3), "first_run_s": round(load_s, 3)}
        print(f"{lang}: RTF {rtf:.3f} ({results[lang]['synth_s']} s for {results[lang]['audio_s']} s of speech; "
              f"first run with load {load_s:.2f} s)")
    report = {"model": "tiny random-weight" if args.tiny else settings.models.get("local-tts") or "workspace",
              "runs": args.runs, "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
