"""How long the storyboard and the plan-before-Render take to draw, against planning alone.

A project of N text-to-video scenes on the tiny Wan (planning checks every request against the
engine, as with real weights). After the first measurement, every scene gets a finished clip job
in the database (as after a render), so the reuse lookups find rows. Timed, median of ``--runs``:

* ``plan``        ``EpisodeService.plan`` (the baseline: what Render does before queueing)
* ``preview``     ``app.episode_estimate.preview`` (plan + one reuse lookup and estimate per step)
* ``storyboard``  ``app.storyboard.storyboard`` (project files + plan + the newest jobs per scene)

    python bench/storyboard.py [--scenes 20 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, runs: int) -> float:
    fn()  # warm: imports, the engine's first check, SQLite's page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def project(folder: Path, scenes: int) -> None:
    folder.mkdir(parents=True)
    (folder / "project.yaml").write_text(
        "title: 青云 bench\nstyle: xianxia\nfps: 8\nresolution: 64x48\nt2v_engine: wan2.1-t2v-1.3b\n"
        "engine_params:\n  wan2.1-t2v-1.3b: {num_inference_steps: 2}\n", encoding="utf-8")
    (folder / "characters.yaml").write_text("characters: {}\n", encoding="utf-8")
    rows = "".join(f"  - id: s{i:03d}\n    prompt: 第{i}幕，云海之上的青云山，剑光划破夜空\n    duration: 0.5\n"
                   for i in range(scenes))
    (folder / "scenes.yaml").write_text("scenes:\n" + rows, encoding="utf-8")


def finish_all(service, episodes, pid: str, ws: Path) -> None:
    """A finished clip job per scene, with the plan's exact request (as the runner would leave it)."""
    import shutil

    from app import jobstate
    from app.access import LOCAL
    from app.db import Job

    sample = ws / "bench-clip.mp4"
    from tests.projects.synth import make_clip

    make_clip(sample, 0.5, 8, 64, 48, seed=1)
    for sp in episodes.plan(pid).scenes:
        step = sp.steps[0]
        job = service.submit(step.request, LOCAL, source="bench")
        out = ws / "outputs" / job.id
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample, out / "clip.mp4")
        Job.update(project=pid).where(Job.id == job.id).execute()
        jobstate.claim(job.id, None, 60)
        jobstate.succeed(job.id, None, {"outputs": [{"file": f"outputs/{job.id}/clip.mp4", "kind": "video"}],
                                        "progress": 100.0})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, nargs="+", default=[20, 200])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    from app.access import LOCAL
    from app.db import db
    from app.episode_estimate import preview
    from app.episodes import EpisodeService
    from app.settings import load_settings
    from app.storyboard import storyboard
    from app.studio import Studio
    from tests.tiny_models import build_tiny_wan_t2v

    tmp = Path(tempfile.mkdtemp())
    os.environ["XIANYING_SECRETS"] = str(tmp / "secrets.yaml")
    ws = tmp / "ws"
    wan = build_tiny_wan_t2v(tmp / "tiny-wan")
    import shutil

    (ws / "models").mkdir(parents=True)
    shutil.copytree(wan, ws / "models" / "wan2.1-t2v-1.3b")
    for n in args.scenes:
        project(ws / "projects" / f"bench-{n}", n)
    studio = Studio(load_settings(ws))  # not started: the jobs below stay rows, nothing runs
    print(f"{'scenes':>6} {'jobs':>5} {'plan':>9} {'preview':>9} {'ratio':>6} {'storyboard':>11} {'ratio':>6}")
    with db.connection_context():
        episodes = EpisodeService(studio.service)
        for n in args.scenes:
            pid = f"bench-{n}"
            for label in ("none", "all"):
                if label == "all":
                    finish_all(studio.service, episodes, pid, ws)
                base = timed(lambda: episodes.plan(pid), args.runs)
                pre = timed(lambda: preview(episodes, pid, LOCAL), args.runs)
                board = timed(lambda: storyboard(episodes, pid, LOCAL), args.runs)
                print(f"{n:>6} {label:>5} {base * 1000:>7.0f}ms {pre * 1000:>7.0f}ms {pre / base:>5.1f}× "
                      f"{board * 1000:>9.0f}ms {board / base:>5.1f}×")


if __name__ == "__main__":
    main()
