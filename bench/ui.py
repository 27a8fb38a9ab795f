"""UI benchmarks (issue 17).

1. Queue view with 1,000 jobs in the table: time for the server to build the view (the Queue
   shows the newest 100), bytes of the table sent when something changed, and bytes when
   nothing did (the 1 s tick's signature check). Goal: <= 100 ms to build the view.
2. Live preview cost: writing one preview PNG from latents of real-model shapes (Wan 1.3B
   480p 81 frames, SDXL 1024², SVD-XT 25 frames), on this CPU. A run writes at most one preview every
   MIN_INTERVAL_S (and at most ~10 per run), so the preview's share of a run is at most
   preview_ms / (MIN_INTERVAL_S × 1000 ms).
3. Page load to interactive: headless chromium, from navigation to the Create form's Generate
   button being visible, median of runs (skipped without chromium/playwright).

    python bench/ui.py [--jobs 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def queue_view(n_jobs: int, runs: int) -> dict:
    from app.access import SYSTEM
    from app.db import Job, db
    from app.settings import load_settings
    from app.studio import Studio
    from app.ui.queue_view import view

    ws = Path(tempfile.mkdtemp()) / "ws"
    ws.mkdir()
    os.environ["XIANYING_SECRETS"] = str(ws.parent / "secrets.yaml")
    studio = Studio(load_settings(ws))  # not started: no workers pick the rows up
    now = time.time()
    statuses = ("succeeded", "failed", "running", "queued", "cancelled")
    with db.connection_context():
        with db.atomic():
            for i in range(n_jobs):
                st = statuses[i % len(statuses)]
                Job.create(id=f"bench{i:06d}", engine="wan2.1-t2v-1.3b", kind="local", lane="gpu", status=st,
                           progress=100.0 if st == "succeeded" else (i % 97), prompt=f"韩立御剑飞行 第{i}镜，云海翻腾",
                           params={"width": 832, "height": 480, "num_frames": 81, "seed": i},
                           outputs=[{"file": f"outputs/x/bench{i:06d}/video.mp4", "kind": "video",
                                     "thumbnail": f"outputs/x/bench{i:06d}/thumb.jpg"}] if st == "succeeded" else [],
                           created_at=now - i, started_at=now - i + 1 if st != "queued" else None,
                           updated_at=now - i)
        service = studio.service
        times, sizes, idle = [], [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            table, _, card, _, sig = view(service, SYSTEM, "all", None, "zh", None)
            times.append((time.perf_counter() - t0) * 1000)
            sizes.append(len(table.encode()) + len(card.encode()))
            t0 = time.perf_counter()
            out = view(service, SYSTEM, "all", None, "zh", sig)
            idle.append((time.perf_counter() - t0) * 1000)
            assert out[0] == {"__type__": "update"}, out[0]
        unchanged = len(json.dumps([{"__type__": "update"}] * 4).encode())  # the State stays on the server
    return {"jobs": n_jobs, "build_ms_median": round(statistics.median(times), 1),
            "build_ms_max": round(max(times), 1), "changed_update_bytes": sizes[0],
            "idle_tick_ms_median": round(statistics.median(idle), 1), "idle_update_bytes_approx": unchanged}


def preview_cost(runs: int) -> dict:
    import torch

    from engines.local.preview import MIN_INTERVAL_S, Previewer

    shapes = {"wan-1.3b-480p-81f": ("bcfhw", (1, 16, 21, 60, 104)), "sdxl-1024": ("bchw", (1, 4, 128, 128)),
              "svd-xt-25f": ("bfchw", (1, 25, 4, 72, 128))}
    out = {}
    tmp = Path(tempfile.mkdtemp())
    for name, (layout, shape) in shapes.items():
        runs = max(runs, 15)
        latents = torch.randn(shape)
        pv = Previewer(tmp / name, layout, total=50, clock=lambda: 0.0)
        times = []
        for _ in range(runs):
            pv.last = None
            t0 = time.perf_counter()
            pv.maybe(50, latents)
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {"preview_ms_median": round(statistics.median(times), 1),
                     "max_share_of_run_pct": round(statistics.median(times) / (10 * MIN_INTERVAL_S), 2)}  # ms per interval
    return out


def page_load(runs: int) -> dict:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright not installed"}
    from tests.e2e.proc import StudioProcess
    from tests.e2e.test_browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        return {"skipped": "chromium not installed"}
    ws = Path(tempfile.mkdtemp()) / "ws"
    ws.mkdir()
    proc = StudioProcess(ws, env={"XIANYING_SECRETS": str(ws.parent / "s.yaml")}).start()
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for _ in range(runs):
                page = browser.new_context(locale="zh-CN").new_page()
                t0 = time.perf_counter()
                page.goto(proc.url + "/")
                page.wait_for_selector("#submit", state="visible", timeout=60_000)
                times.append((time.perf_counter() - t0) * 1000)
                page.context.close()
            browser.close()
    finally:
        proc.stop()
    return {"load_to_interactive_ms_median": round(statistics.median(times)), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    result = {"queue": queue_view(args.jobs, args.runs), "preview": preview_cost(args.runs),
              "page": page_load(args.runs)}
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
