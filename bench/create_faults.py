"""Create safety under the usual faults (issue 20): how many tasks each vendor ends up holding.

Every vendor's real adapter runs N jobs at once (8 threads) against its loopback fake with the
issue's fault mix on every API call: 429 30 %, 5xx 20 % (half of them after the task was made),
slow answers 10 % (the task is made, the answer comes after the client gave up), JSON cut in
half 5 % (made, unreadable), downloads truncated 20 %. Each job creates, polls and downloads.

Printed per vendor and seed: jobs, tasks the vendor holds, jobs that adopted a task found by a
lookup or a deduplicated re-send, succeeded, failed "may have been created", failed otherwise.
``--blind`` re-sends every lost create (the behaviour before issue 20) for comparison.

    python bench/create_faults.py [--jobs 20] [--seeds 1 2 3] [--blind]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--blind", action="store_true", help="re-send lost creates blindly (the old bug)")
    args = parser.parse_args()
    for name, value in {"XIANYING_POLL_SCALE": "0", "XIANYING_RETRY_ATTEMPTS": "3", "XIANYING_RETRY_MAX_WAIT": "0.05",
                        "XIANYING_RETRY_INITIAL": "0.01", "XIANYING_HTTP_TIMEOUT": "0.25",
                        "XIANYING_CREATE_SETTLE_S": "0.05", "XIANYING_LOOKUP_SLACK_S": "0.05",
                        "XIANYING_DOWNLOAD_TIMEOUT": "5", "NO_PROXY": "127.0.0.1,localhost"}.items():
        os.environ[name] = value
    import pytest

    from app.settings import load_settings
    from engines.cloud import safecreate
    from tests.cloud.fakeserver import Chaos, tiny_mp4
    from tests.cloud.test_create_safety import run_job
    from tests.cloud.vendors import VENDORS

    maybe: dict[str, set] = {}
    recovered: dict[str, set] = {}
    original = safecreate.log_attempt

    def counting(journal, job_id, **entry):
        engine_id, outcome = journal.root.name, entry.get("outcome")
        if outcome == safecreate.MAYBE_CREATED:
            maybe.setdefault(engine_id, set()).add(job_id)
        if outcome == "adopted" or (outcome == "created" and job_id in maybe.get(engine_id, ())):
            recovered.setdefault(engine_id, set()).add(job_id)  # found by a lookup, or a deduplicated re-send
        return original(journal, job_id, **entry)

    safecreate.log_attempt = counting
    if args.blind:
        for engine_id in safecreate.RECOVERY:
            safecreate.RECOVERY[engine_id] = "dedupe"  # i.e. send again, whatever the vendor does
    tmp = Path(tempfile.mkdtemp(prefix="xy-create-faults-"))
    os.environ["XIANYING_SECRETS"] = str(tmp / "secrets.yaml")
    mp4 = tiny_mp4(tmp / "tiny.mp4").read_bytes()
    print(f"{'vendor':12} {'seed':>4} {'jobs':>4} {'tasks':>5} {'adopted':>7} {'ok':>3} {'maybe':>5} {'other':>5}  s")
    worst = 0
    for vendor in VENDORS.values():
        mp = pytest.MonkeyPatch()
        fake = vendor.serve(mp4, mp)
        try:
            ws = tmp / vendor.id
            ws.mkdir()
            engine = vendor.engine(load_settings(ws))
            for seed in args.seeds:
                before = set(vendor.tasks(fake))
                fake.chaos = Chaos(p429=0.3, p5xx=0.2, slow=0.1, cut=0.05, truncate_download=0.2, slow_s=0.5,
                                   seed=seed)
                jobs = [uuid.uuid4().hex for _ in range(args.jobs)]
                started = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    results = list(pool.map(lambda j, v=vendor, e=engine, f=fake, s=seed: run_job(v, e, f, j, f"bench {s} {j}"),
                                            jobs))
                took = time.perf_counter() - started
                fake.chaos = None
                time.sleep(0.6)
                tasks = len(set(vendor.tasks(fake)) - before)
                adopted = len(recovered.get(vendor.id, set()) & set(jobs))
                ok = sum(1 for _, how in results if how == "succeeded")
                undecided = sum(1 for out, how in results if how == "create" and getattr(out, "vendor_code", "")
                            == safecreate.MAYBE_CODE)
                other = len(results) - ok - undecided
                worst = max(worst, tasks - len(jobs))
                print(f"{vendor.id:12} {seed:>4} {len(jobs):>4} {tasks:>5} {adopted:>7} {ok:>3} {undecided:>5} {other:>5}"
                      f"  {took:.1f}")
        finally:
            fake.stop()
            mp.undo()
    print(f"most tasks beyond jobs: {worst}")


if __name__ == "__main__":
    main()
