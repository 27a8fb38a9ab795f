"""Spine benchmarks (issue 2), each against a baseline measured in the same run.

1. Cold start to first HTTP 200 on "/": ``python launch.py`` vs a bare ``gr.Blocks`` hello
   world, interleaved runs, medians. Target ratio <= 1.3.
2. Job overhead: a trivial job (tiny random Wan, 16x16, 5 frames, 1 step) through
   gradio_client ``/submit`` -> ``/status`` polled until ``succeeded`` vs a bare Gradio
   endpoint's round trip; and submit-to-running (the row's ``started_at - created_at``).
   Target submit-to-running median <= 50 ms.

    python bench/spine.py [--runs 5] [--jobs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.proc import StudioProcess, free_port  # noqa: E402

HELLO = textwrap.dedent("""
    import os, sys
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr
    def echo(x: str) -> str:
        return x
    with gr.Blocks() as demo:
        gr.Markdown("hello")
        gr.api(echo, api_name="echo")
    demo.launch(server_port=int(sys.argv[1]), prevent_thread_lock=False)
""")


def wait_200(url: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError("no answer")


def cold_start(runs: int, tmp: Path) -> dict:
    hello = tmp / "hello.py"
    hello.write_text(HELLO)
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    studio_t, hello_t = [], []
    for i in range(runs):
        for kind in ("hello", "studio"):
            port = free_port()
            if kind == "hello":
                cmd = [sys.executable, str(hello), str(port)]
            else:
                cmd = [sys.executable, str(ROOT / "launch.py"), "--no-browser", "--port", str(port),
                       "--workspace", str(tmp / f"ws-cold-{i}")]
            log = tmp / f"{kind}-{i}.log"
            with open(log, "wb") as fh:
                proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=fh, stderr=subprocess.STDOUT)
            try:
                (hello_t if kind == "hello" else studio_t).append(wait_200(f"http://127.0.0.1:{port}/", proc))
            except RuntimeError:
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            finally:
                proc.terminate()
                proc.wait(30)
    h, s = statistics.median(hello_t), statistics.median(studio_t)
    return {"hello_s": h, "studio_s": s, "ratio": s / h}


def job_overhead(jobs: int, tmp: Path) -> dict:
    from gradio_client import Client

    from tests.conftest import install_weights
    from tests.tiny_models import build_tiny_wan_t2v

    weights = build_tiny_wan_t2v(tmp / "weights" / "wan")
    ws = tmp / "ws-jobs"
    ws.mkdir()
    install_weights(ws, "wan2.1-t2v-1.3b", weights)
    studio = StudioProcess(ws, env={"XIANYING_SECRETS": str(tmp / "secrets.yaml")}).start()
    hello_port = free_port()
    (tmp / "hello.py").write_text(HELLO)
    hello = subprocess.Popen([sys.executable, str(tmp / "hello.py"), str(hello_port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_200(f"http://127.0.0.1:{hello_port}/", hello)
        bare = Client(f"http://127.0.0.1:{hello_port}", verbose=False)
        client = Client(studio.url, verbose=False, download_files=str(tmp / "dl"))
        req = {"engine": "wan2.1-t2v-1.3b", "prompt": "bench",
               "params": {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 1, "seed": 1}}
        client.predict(req, api_name="/submit")  # warm the model cache and imports
        time.sleep(3)
        bare_rt, total, to_running, run = [], [], [], []
        for _ in range(jobs):
            t0 = time.perf_counter()
            bare.predict("x", api_name="/echo")
            bare_rt.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            task = client.predict(req, api_name="/submit")["task_id"]
            while (s := client.predict(task, api_name="/status"))["status"] not in ("succeeded", "failed"):
                time.sleep(0.005)
            total.append(time.perf_counter() - t0)
            to_running.append(s["timings"]["queued_s"])
            run.append(s["timings"]["run_s"])
        return {"bare_roundtrip_ms": 1000 * statistics.median(bare_rt),
                "submit_to_succeeded_ms": 1000 * statistics.median(total),
                "submit_to_running_ms": 1000 * statistics.median(to_running),
                "run_ms": 1000 * statistics.median(run)}
    finally:
        hello.terminate()
        studio.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cs = cold_start(args.runs, tmp)
        print(f"cold start to first 200 (median of {args.runs}): bare gr.Blocks {cs['hello_s']:.2f} s, "
              f"studio {cs['studio_s']:.2f} s, ratio {cs['ratio']:.2f} (target <= 1.3)")
        jo = job_overhead(args.jobs, tmp)
        print(f"job overhead (median of {args.jobs}): bare endpoint round trip {jo['bare_roundtrip_ms']:.0f} ms; "
              f"trivial job submit->succeeded {jo['submit_to_succeeded_ms']:.0f} ms "
              f"(of which engine run {jo['run_ms']:.0f} ms); submit->running {jo['submit_to_running_ms']:.1f} ms "
              f"(target <= 50 ms)")


if __name__ == "__main__":
    main()
