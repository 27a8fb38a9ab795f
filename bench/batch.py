"""How long queueing N cloud jobs takes: N ``submit`` calls, one ``submit_many`` enqueuing one
Huey message at a time, and one ``submit_many`` with ``JobQueue.enqueue_many`` (one SQLite
transaction per lane). In process, over the job service (no Gradio); a studio whose lanes are not
consumed, so the jobs stay queued and nothing talks to a vendor. Median of ``--runs``.

    python bench/batch.py [--jobs 500] [--runs 5]
    python bench/batch.py --gradio        # also N /submit calls vs one /submit_many over HTTP
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

REQUEST = {"engine": "dashscope", "prompt": "剑仙御剑穿过云海",
           "params": {"model": "wanx2.1-t2v-turbo", "size": "832*480", "duration": 5}}


def one_by_one_enqueue(service):
    """``enqueue_many`` as it would be without the batch path: one message (and one row update) each."""
    def enqueue_many(jobs):
        for job in jobs:
            service.enqueue(job)

    return enqueue_many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gradio", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ["DASHSCOPE_API_KEY"] = "sk-bench-not-a-key"
    os.environ["XIANYING_SECRETS"] = str(Path(tempfile.mkdtemp()) / "secrets.yaml")

    from app.access import LOCAL
    from app.db import Job, db
    from app.settings import load_settings
    from app.studio import Studio

    ws = Path(tempfile.mkdtemp(prefix="xy-batch-"))
    studio = Studio(load_settings(ws))
    service = studio.service
    batch = [dict(REQUEST, prompt=f"{REQUEST['prompt']} {i}") for i in range(args.jobs)]
    fast = service.enqueue_many
    modes = {
        "submit x N": lambda: [service.submit(r, LOCAL) for r in batch],
        "submit_many, enqueue one by one": lambda: service.submit_many(batch, LOCAL),
        "submit_many + enqueue_many": lambda: service.submit_many(batch, LOCAL),
    }
    times: dict[str, list[float]] = {m: [] for m in modes}
    with db.connection_context():
        for run in range(args.runs + 1):  # the first round warms imports and caches; not counted
            for mode, fn in modes.items():
                service.enqueue_many = one_by_one_enqueue(service) if "one by one" in mode else fast
                start = time.perf_counter()
                jobs = fn()
                took = time.perf_counter() - start
                assert len(jobs) == args.jobs and Job.get_by_id(jobs[-1].id).huey_id
                if run:
                    times[mode].append(took)
        service.enqueue_many = fast
        print(f"{args.jobs} jobs, median of {args.runs} runs (min-max), in process:")
        for mode, ts in times.items():
            med = statistics.median(ts)
            print(f"  {mode:34s} {med * 1000:8.1f} ms  ({min(ts) * 1000:.1f}-{max(ts) * 1000:.1f})"
                  f"  {med / args.jobs * 1000:.2f} ms/job")
        if args.gradio:
            gradio_figures(studio, batch, args.runs)
    studio.queue.close()


def gradio_figures(studio, batch, runs: int) -> None:
    import httpx

    from app.server import create_app
    from tests.api.conftest import serve

    def call(client, name, data):
        r = client.post(f"/gradio_api/call/{name}", json={"data": [data]})
        r.raise_for_status()
        answer = client.get(f"/gradio_api/call/{name}/{r.json()['event_id']}").text
        assert "event: complete" in answer, answer[:300]

    app = create_app(studio, manage_studio=False)
    times = {"/submit x N": [], "/submit_many x 1": []}
    with serve(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        for run in range(runs + 1):
            start = time.perf_counter()
            for r in batch:
                call(client, "submit", r)
            one = time.perf_counter() - start
            start = time.perf_counter()
            call(client, "submit_many", batch)
            many = time.perf_counter() - start
            if run:
                times["/submit x N"].append(one)
                times["/submit_many x 1"].append(many)
    print(f"{len(batch)} jobs over Gradio's call API (one client, sequential), median of {runs}:")
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"  {mode:34s} {med * 1000:8.1f} ms  ({min(ts) * 1000:.1f}-{max(ts) * 1000:.1f})")


if __name__ == "__main__":
    main()
