"""How long a cancel and a stop take, and what a hard cancel costs (gpu_pool.isolation: process).

    python bench/stop.py                    # tiny Wan weights built in a temp folder, CPU
    python bench/stop.py --json stop.json

A "long step" job is the tiny Wan model at 512×512, 121 frames: one step takes far longer than
``kill_after_s``, so only the process kill ends it. A "short step" job (16×16, many steps) stops
at its next step on its own and keeps the worker process and its warm model.

Figures (seconds): ``cold_job``: first tiny job on a new studio (starts the worker process);
``warm_job``: the same job again; ``cancel_long_step``: cancel → row cancelled (the kill path);
``job_after_kill``: the tiny job right after (a fresh worker process loads the model again);
``cancel_short_step``: cancel → cancelled at a step boundary; ``stop_long_step``: Studio.stop()
with a long step running (the row is back to queued when it returns).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WAN = "wan2.1-t2v-1.3b"
LONG = {"engine": WAN, "prompt": "long", "params": {"width": 512, "height": 512, "num_frames": 121,
                                                   "num_inference_steps": 50, "seed": 1}}
SHORT = {"engine": WAN, "prompt": "short", "params": {"width": 16, "height": 16, "num_frames": 5,
                                                     "num_inference_steps": 200, "seed": 2}}
TINY = {"engine": WAN, "prompt": "tiny", "params": {"width": 16, "height": 16, "num_frames": 5,
                                                   "num_inference_steps": 2, "seed": 3}}


def wait(fn, timeout=600.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    parser.add_argument("--isolation", choices=("process", "thread"), default="process",
                        help="thread: the same jobs inside the studio (a long step then runs to its end)")
    args = parser.parse_args()
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from app.access import LOCAL
    from app.db import Job, db
    from app.settings import load_settings
    from app.studio import Studio
    from tests.conftest import install_weights
    from tests.tiny_models import build_tiny_wan_t2v

    root = Path(tempfile.mkdtemp(prefix="xy-stop-"))
    os.environ["XIANYING_SECRETS"] = str(root / "secrets.yaml")
    ws = root / "ws"
    ws.mkdir()
    install_weights(ws, WAN, build_tiny_wan_t2v(root / "weights"))
    studio = Studio(load_settings(ws, gpu_pool={"isolation": args.isolation}))
    studio.start()
    figures: dict[str, float] = {}
    row = Job.get_by_id

    def done(job_id):
        return wait(lambda: (r := row(job_id)).status in ("succeeded", "failed", "cancelled") and r)

    def timed_job(name, request):
        t0 = time.monotonic()
        job = studio.service.submit(request, LOCAL)
        assert done(job.id).status == "succeeded"
        figures[name] = time.monotonic() - t0

    def timed_cancel(name, request, started):
        job = studio.service.submit(request, LOCAL)
        wait(lambda: started(row(job.id)))
        t0 = time.monotonic()
        studio.service.cancel(job.id, LOCAL)
        assert done(job.id).status == "cancelled"
        figures[name] = time.monotonic() - t0

    with db.connection_context():
        timed_job("cold_job", TINY)
        timed_job("warm_job", TINY)
        timed_cancel("cancel_long_step", LONG, lambda r: r.message == "step 0/50")
        timed_job("job_after_kill", TINY)
        timed_cancel("cancel_short_step", SHORT, lambda r: r.progress > 1)
        job = studio.service.submit(LONG, LOCAL)
        wait(lambda: row(job.id).message == "step 0/50")
    t0 = time.monotonic()
    studio.stop()
    figures["stop_long_step"] = time.monotonic() - t0
    with db.connection_context():
        figures["stop_left_row"] = row(job.id).status  # queued; thread mode: running until the step ends
    figures["kills"] = studio.runner.isolation.kills if studio.runner.isolation else 0
    for name, value in figures.items():
        print(f"{name:18s} {value:8.2f}" if isinstance(value, float) else f"{name:18s} {value:>8}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
