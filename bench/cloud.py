"""Cloud-lane benchmark (issue 3): many concurrent cloud jobs through a running studio.

A loopback DashScope runs in its own process (a thread per connection, so it answers
concurrently). Its "vendor latency" is TIME-TO-FINISH: a task answers RUNNING until
``--finish`` seconds (default 2) after its create, then SUCCEEDED with a signed URL to a real
tiny MP4; on top of that every HTTP answer is delayed by ``--latency`` seconds (default 0.05,
a network round trip). The studio (``launch.py``) runs as a subprocess pointed at the fake;
this script drives it through Gradio's API: ``/submit`` every job (``--submitters`` threads, plain
HTTP call API), then polls ``/tasks`` until none is queued or running, while

* a sampler thread times ``/status`` (its own client, one call every 50 ms; see
  ``StatusSampler``), compared with the same calls against the idle studio before the run;
* a monitor thread reads ``/proc/<pid>/status`` of the studio and its children (the cloud
  process) every 0.2 s and sums them (Threads, VmRSS; VmHWM at the end is the peak RSS).

Printed: wall time (first submit -> all finished), submit time, jobs per second, studio
threads (idle before the run and peak during it), configured io workers and the most
vendor requests the fake ever saw in flight at once (what really talked to the vendor),
``/status`` p50/p99/max, peak RSS, and the fake's request counts (exactly one create per job).

Issue 18 adds: a bare Gradio app's ``/status`` p99 at rest (same run, same call path) beside the
studio's under load, the time one job alone takes (the vendor time) beside the wall time, and
``--async-cloud on|off`` (polls on the cloud event loop, or on the io workers).

    python bench/cloud.py [--jobs 500] [--finish 2] [--latency 0.05] [--io-workers 4] [--poll-scale 1]
    python bench/cloud.py --jobs 500 --finish 0 --latency 2 --async-cloud on   # issue 18's slow vendor
    python bench/cloud.py --jobs 500 --latency 2 --submit batch [--cloud-process on|off]

``--cloud-process`` (issue 18, second pass): the chains in a process of their own (on, the default)
or in the studio's server process (off, the first pass); ``--submit batch`` queues the jobs with
one ``/submit_many`` call instead of one ``/submit`` each.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.proc import StudioProcess  # noqa: E402

KEY = "sk-bench-dashscope-0123456789abcdef"
ACTIVE = ["queued", "running"]


# --- the vendor, in its own process -------------------------------------------------------
def result_video(path: Path, kind: str) -> Path:
    """What the fake returns: ``tiny`` (64x48, 8 frames: the studio's own cost per job, nothing of the
    video's) or ``720p`` (5 s at 24 fps of moving gradients, about a megabyte: what a vendor returns, whose
    probe and thumbnail cost what a real result's do)."""
    from tests.cloud.fakeserver import tiny_mp4

    if kind == "tiny":
        return tiny_mp4(path)
    import numpy as np

    from core.media import write_video

    y, x = np.mgrid[0:720, 0:1280]
    frames = np.stack([np.stack([(x + 5 * t) % 256, (y + 3 * t) % 256, ((x + y) // 2 + t) % 256], -1)
                       for t in range(120)]).astype(np.uint8)
    return write_video(frames, path, 24)


def serve_fake(conn, finish_s: float, latency: float, video_kind: str = "tiny") -> None:
    """Child process: run a timed DashScope until told to stop, then send back its counts."""
    import uuid

    from tests.cloud.fake_dashscope import FakeDashScope
    from tests.cloud.fakeserver import Reply

    class TimedDashScope(FakeDashScope):
        def __init__(self, video: bytes):
            super().__init__(KEY, video)
            self.plan = ["SUCCEEDED"]
            self.born: dict[str, float] = {}
            self.inflight = self.max_inflight = 0
            self._gauge = threading.Lock()
            self.arrived: dict[str, dict] = {}  # task id -> {"create": t, "poll": [t, ...], "download": t}
            self._now = threading.local()  # when the request being handled arrived (time.time())

        def _create(self, req):
            reply = super()._create(req)
            if reply.status == 200:
                task_id = reply.body["output"]["task_id"]
                self.born[task_id] = time.monotonic()
                self.arrived.setdefault(task_id, {"poll": []})["create"] = self._now.t
            return reply

        def _query(self, task_id):
            born = self.born.get(task_id)
            if born is not None and time.monotonic() - born < finish_s:
                return Reply(200, {"request_id": str(uuid.uuid4()),
                                   "output": {"task_id": task_id, "task_status": "RUNNING"}})
            return super()._query(task_id)

        def _serve(self, req, handler):
            self._now.t = now = time.time()
            route = self.route(req)
            if route in ("poll", "download"):
                task_id = req.path.rsplit("/", 1)[1].removesuffix(".mp4")
                with self._gauge:
                    seen = self.arrived.setdefault(task_id, {"poll": []})
                    if route == "poll":
                        seen["poll"].append(now)
                    else:
                        seen["download"] = now
            with self._gauge:
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                super()._serve(req, handler)
            finally:
                with self._gauge:
                    self.inflight -= 1

    with tempfile.TemporaryDirectory() as tmp:
        video = result_video(Path(tmp) / "v.mp4", video_kind).read_bytes()
    fake = TimedDashScope(video)
    fake.latency = latency
    fake.start()
    fake._http.socket.listen(1024)  # the stdlib's backlog of 5 would refuse connections under bursts
    conn.send(fake.base_url)
    conn.recv()  # "stop"
    conn.send({"create": fake.count("create"), "poll": fake.count("poll"), "download": fake.count("download"),
               "other": fake.count("other"), "max_inflight": fake.max_inflight,
               "arrived": fake.arrived})
    fake.stop()


def serve_bare(conn) -> None:
    """Child process: a bare Gradio app with one ``/status`` endpoint answering a constant, the floor
    the studio's ``/status`` is compared with (issue 18: studio p99 under load <= 1.5x bare at rest)."""
    import socket

    import gradio as gr

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with gr.Blocks() as demo:
        box, out = gr.Textbox(), gr.JSON()
        gr.Button("status").click(lambda task_id: {"task_id": task_id, "status": "running"}, box, out,
                                  api_name="status")
    demo.queue(default_concurrency_limit=None)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    conn.send(f"http://127.0.0.1:{port}")
    conn.recv()  # "stop"
    demo.close()


def call(http, api: str, *args):
    """One call of a named endpoint through Gradio's plain HTTP call API (POST, then read the result's
    event stream): lighter on the bench's own CPU than gradio_client, which it would otherwise take
    from the studio on a small machine."""
    import json

    event = http.post(f"/gradio_api/call/{api}", json={"data": list(args)})
    event.raise_for_status()
    answer = http.get(f"/gradio_api/call/{api}/{event.json()['event_id']}")
    head, _, data = answer.text.partition("event: complete\ndata: ")
    if not data:
        raise RuntimeError(answer.text[:200])
    return json.loads(data.splitlines()[0])[0]


def bare_status_ms(url: str, samples: int = 150) -> list[float]:
    """``/status`` of the bare app through Gradio's HTTP call API (the studio's "http" kind)."""
    import httpx

    out = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(samples):
            t0 = time.perf_counter()
            event = http.post("/gradio_api/call/status", json={"data": ["x"]})
            event.raise_for_status()
            answer = http.get(f"/gradio_api/call/status/{event.json()['event_id']}")
            if "event: complete" not in answer.text:
                raise RuntimeError(answer.text[:200])
            out.append(1000 * (time.perf_counter() - t0))
            time.sleep(0.05)
    return out


# --- measuring the studio ------------------------------------------------------------------
def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Threads", "VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def family_status(pid: int) -> dict:
    """``proc_status`` summed over the studio and its children (threads, RSS, peak RSS)."""
    total = proc_status(pid)
    for child in children(pid):
        try:
            for key, value in proc_status(child).items():
                total[key] = total.get(key, 0) + value
        except FileNotFoundError:
            pass
    return total


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) a process has used: ``pid``, or this one."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The process's children (the cloud process, app/cloud_host.py; a gpu worker if one runs)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


def family_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of the studio's server process and of its children, apart."""
    kids = kids_sys = 0.0
    for child in children(pid):
        try:
            user, system = cpu_split(child)
        except FileNotFoundError:
            continue
        kids, kids_sys = kids + user + system, kids_sys + system
    return {"server": cpu_s(pid), "children": kids, "children_sys": kids_sys}


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class Monitor(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True, name="monitor")
        self.pid, self.stop_flag = pid, threading.Event()
        self.threads: list[int] = []
        self.rss_kb: list[int] = []

    def run(self) -> None:
        while not self.stop_flag.wait(0.2):
            s = family_status(self.pid)
            self.threads.append(s["Threads"])
            self.rss_kb.append(s["VmRSS"])


class StatusSampler(threading.Thread):
    """Times ``/status`` two ways (see ``kind``): through gradio_client (what a script sees; the client
    itself waits on its shared event stream in 50 ms sleeps) and through Gradio's plain HTTP call
    API (POST ``/gradio_api/call/status`` then read the result's event stream); and, for scale,
    the REST ``/health`` route (FastAPI, no Gradio queue)."""

    KINDS = ("client", "http", "health")

    @staticmethod
    def kind(turn: int) -> str:
        """Three turns in four time the HTTP call API (the p99 the goal is about needs well over a
        hundred samples); the fourth alternates gradio_client and ``/health``."""
        return "http" if turn % 4 else ("client", "health")[turn // 4 % 2]

    def __init__(self, url: str, ids: list[str]):
        super().__init__(daemon=True, name="status-sampler")
        import httpx
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=False)
        self.http = httpx.Client(base_url=url, timeout=30)
        self.ids, self.stop_flag = ids, threading.Event()
        self.samples: dict[str, list[tuple[float, float]]] = {k: [] for k in self.KINDS}  # (start, ms)
        self.errors = 0

    def once(self, kind: str, task_id: str) -> float:
        t0 = time.perf_counter()
        if kind == "client":
            self.client.predict(task_id, api_name="/status")
        elif kind == "health":
            self.http.get("/health").raise_for_status()
        else:
            event = self.http.post("/gradio_api/call/status", json={"data": [task_id]})
            event.raise_for_status()
            answer = self.http.get(f"/gradio_api/call/status/{event.json()['event_id']}")
            if "event: complete" not in answer.text:
                raise RuntimeError(answer.text[:200])
        ms = 1000 * (time.perf_counter() - t0)
        self.samples[kind].append((t0, ms))
        return ms

    def run(self) -> None:
        turn = 0
        while not self.stop_flag.wait(0.05):
            if not self.ids:
                continue
            turn += 1
            try:
                self.once(self.kind(turn), random.choice(self.ids))
            except Exception:  # a failed sample is counted, not fatal
                self.errors += 1

    def ms(self, kind: str, after: float = 0.0, before: float = float("inf")) -> list[float]:
        return [ms for t0, ms in self.samples[kind] if after <= t0 < before]


def job_times(path: Path) -> dict[str, dict]:
    """Each job's times as the studio stored them (its database, read once the run is over)."""
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        con.row_factory = sqlite3.Row
        return {row["id"]: dict(row) for row in
                con.execute("SELECT id, remote_id, created_at, started_at, finished_at FROM jobs")}


def phases(rows: dict[str, dict], arrived: dict[str, dict], args, *, exclude: str, t0: float) -> dict:
    """Where each job's time went between the vendor's answers, in seconds: the fake saw each request
    arrive, and answers it ``--latency`` later. A gap is the studio's own time: writing what came back,
    taking its turn, sending the next request (a poll's gap leaves out the poll delay)."""
    delay = 1.0 * args.poll_scale  # DashScope's first poll waits 1 s (engines/cloud/dashscope.py poll_delay)
    out: dict[str, list[float]] = {"submit -> claimed": [], "claimed -> create sent": [],
                                   "create answered -> poll sent": [], "poll answered -> download sent": [],
                                   "download answered -> finished": []}
    last, last_at = {}, -1.0
    spread: dict[str, list[float]] = {"creates": [], "first polls": [], "downloads": [], "finishes": []}
    for job_id, row in rows.items():
        seen = arrived.get(row["remote_id"] or "")
        if job_id == exclude or not seen or not seen.get("poll") or "download" not in seen or not row["finished_at"]:
            continue
        gaps = {"submit -> claimed": row["started_at"] - t0,
                "claimed -> create sent": seen["create"] - row["started_at"],
                "create answered -> poll sent": seen["poll"][0] - seen["create"] - args.latency - delay,
                "poll answered -> download sent": seen["download"] - seen["poll"][-1] - args.latency,
                "download answered -> finished": row["finished_at"] - seen["download"] - args.latency}
        for name, gap in gaps.items():
            out[name].append(gap)
        for name, at in (("creates", seen["create"]), ("first polls", seen["poll"][0]),
                         ("downloads", seen["download"]), ("finishes", row["finished_at"])):
            spread[name].append(at - t0)
        if row["finished_at"] > last_at:
            last, last_at = {**gaps, "polls": len(seen["poll"])}, row["finished_at"]
    return {"all": out, "last": last, "spread": spread}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- the run -------------------------------------------------------------------------------
def run(args) -> dict:
    import httpx

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    vendor = ctx.Process(target=serve_fake, args=(child, args.finish, args.latency, args.video), daemon=True)
    vendor.start()
    if not parent.poll(60):
        raise RuntimeError(f"the fake vendor process did not start (exit code {vendor.exitcode})")
    base_url = parent.recv()
    bare_parent, bare_child = ctx.Pipe()
    bare = ctx.Process(target=serve_bare, args=(bare_child,), daemon=True)
    bare.start()
    if not bare_parent.poll(120):
        raise RuntimeError("the bare Gradio app did not start")
    bare_rest = bare_status_ms(bare_parent.recv())
    bare_parent.send("stop")
    bare.join(10)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ws = tmp / "ws"
        ws.mkdir()
        (ws / "config.yaml").write_text(f"queue:\n  io_workers: {args.io_workers}\n  async_cloud: "
                                        f"{'true' if args.async_cloud == 'on' else 'false'}\n", encoding="utf-8")
        if args.key_from == "file":  # as the UI saves it (app/secrets.py), not in the environment
            from app.secrets import SecretStore

            SecretStore(tmp / "secrets.yaml").set("DASHSCOPE_API_KEY", KEY)
        key_env = {"DASHSCOPE_API_KEY": KEY} if args.key_from == "env" else {}
        env = {**key_env, "DASHSCOPE_HTTP_BASE_URL": base_url, "NO_PROXY": "127.0.0.1,localhost",
               "XIANYING_POLL_SCALE": str(args.poll_scale), "XIANYING_SECRETS": str(tmp / "secrets.yaml"),
               "XIANYING_CLOUD_CONCURRENCY": str(args.concurrency),
               "XIANYING_CLOUD_PROCESS": "1" if args.cloud_process == "on" else "0",
               "XIANYING_CLOUD_PROCESSES": str(args.cloud_processes)}
        studio = StudioProcess(ws, env=env, log_path=tmp / "studio.log").start()
        pid = studio.proc.pid
        request = {"engine": "dashscope", "prompt": "剑仙御剑穿过云海",
                   "params": {"model": "wanx2.1-t2v-turbo", "size": "832*480", "duration": 5}}
        try:
            client = httpx.Client(base_url=studio.url, timeout=60)
            local = threading.local()

            def caller() -> httpx.Client:  # one connection per submitting thread
                if not hasattr(local, "http"):
                    local.http = httpx.Client(base_url=studio.url, timeout=60)
                return local.http
            time.sleep(2.0)  # let start-up settle before reading the idle thread count
            idle = family_status(pid)
            t_warm = time.time()
            warm = call(client, "submit", request)["task_id"]  # one job, then /status at rest
            while call(client, "status", warm)["status"] in ACTIVE:
                time.sleep(0.2)
            monitor = Monitor(pid)
            ids: list[str] = [warm]
            sampler = StatusSampler(studio.url, ids)
            for turn in range(160):  # at rest: the same calls against the idle studio
                sampler.once(sampler.kind(turn), warm)
                time.sleep(0.05)
            rest = {k: sampler.ms(k) for k in sampler.KINDS}
            sampler.samples = {k: [] for k in sampler.KINDS}
            load_before = os.getloadavg()[0]
            fam = family_cpu_s(pid)
            cpu_before = {"studio": fam["server"], "cloud": fam["children"], "cloud_sys": fam["children_sys"],
                          "vendor": cpu_s(vendor.pid),
                          "bench": cpu_s(), "machine": machine_busy_s()}
            monitor.start()
            sampler.start()
            errors: list[str] = []

            def submit(_):
                try:
                    ids.append(call(caller(), "submit", request)["task_id"])
                except Exception as exc:  # the client's shared stream can drop under load: count it
                    errors.append(type(exc).__name__)

            def active() -> bool:
                for _ in range(5):
                    try:
                        return bool(call(client, "tasks", {"status": ACTIVE, "limit": 1}))
                    except Exception as exc:
                        errors.append(type(exc).__name__)
                        time.sleep(0.5)
                raise RuntimeError(f"/tasks keeps failing: {errors[-5:]}")

            t0, t0_epoch = time.perf_counter(), time.time()
            if args.submit == "batch":  # /submit_many: one call per --batch jobs
                for start in range(0, args.jobs, args.batch):
                    answers = call(caller(), "submit_many", [request] * min(args.batch, args.jobs - start))
                    ids.extend(a["task_id"] for a in answers)
            else:
                with ThreadPoolExecutor(args.submitters) as pool:
                    list(pool.map(submit, range(args.jobs)))
            t_submitted = time.perf_counter()
            while active():
                if time.perf_counter() - t0 > args.timeout:
                    raise RuntimeError(f"jobs still unfinished after {args.timeout}s; see {tmp / 'studio.log'}")
                time.sleep(0.5)
            wall = time.perf_counter() - t0
            load_after = os.getloadavg()[0]
            fam = family_cpu_s(pid)
            cpu = {"studio": fam["server"], "cloud": fam["children"], "cloud_sys": fam["children_sys"],
                   "vendor": cpu_s(vendor.pid), "bench": cpu_s(),
                   "machine": machine_busy_s()}
            cpu = {k: cpu[k] - cpu_before[k] for k in cpu}
            sampler.stop_flag.set()
            monitor.stop_flag.set()
            sampler.join()
            monitor.join()
            peak = family_status(pid)
            done = []
            for offset in range(0, args.jobs + 1, 500):
                done += call(client, "tasks", {"limit": 500, "offset": offset})
            parent.send("stop")
            fake = parent.recv()
            rows = job_times(ws / "studio.db")
        finally:
            studio.stop()
            vendor.join(10)
    done = [job for job in done if job["task_id"] != warm]
    # one job alone, and all of them: from the first submit call's start to the last job's finish as
    # the studio wrote it (the loops above only notice it at their next check, 0.2 s and 0.5 s apart)
    vendor_s = rows[warm]["finished_at"] - t_warm
    finished = [row["finished_at"] for job_id, row in rows.items() if job_id != warm and row["finished_at"]]
    wall = max(finished) - t0_epoch if len(finished) == args.jobs else wall
    states: dict[str, int] = {}
    for job in done:
        states[job["status"]] = states.get(job["status"], 0) + 1
    run_s = [job["timings"].get("run_s", 0.0) for job in done if job["status"] == "succeeded"]
    queued_s = [job["timings"].get("queued_s", 0.0) for job in done if job["status"] == "succeeded"]
    during = {k: sampler.ms(k) for k in sampler.KINDS}
    return {"jobs": args.jobs, "wall_s": wall, "submit_s": t_submitted - t0, "states": states,
            "client_errors": errors, "sample_errors": sampler.errors, "load": (load_before, load_after),
            "run_s_p50": statistics.median(run_s) if run_s else float("nan"), "run_s_max": max(run_s or [0]),
            "queued_s_p50": statistics.median(queued_s) if queued_s else float("nan"),
            "queued_s_max": max(queued_s or [0]),
            "threads_idle": idle["Threads"], "threads_peak": max(monitor.threads or [0]),
            "io_workers": args.io_workers, "max_inflight": fake["max_inflight"], "rest": rest, "during": during,
            "while_submitting": {k: sampler.ms(k, before=t_submitted) for k in sampler.KINDS},
            "after_submitting": {k: sampler.ms(k, after=t_submitted) for k in sampler.KINDS},
            "rss_idle_mb": idle["VmRSS"] / 1024, "rss_peak_mb": peak["VmHWM"] / 1024, "fake": fake,
            "bare_rest": bare_rest, "vendor_s": vendor_s, "cpu": cpu,
            "phases": phases(rows, fake["arrived"], args, exclude=warm, t0=t0_epoch),
            "slowest": sorted(((ms, t - t0) for t, ms in sampler.samples["http"]), reverse=True)[:4]}


def table(r: dict, args) -> str:
    f = r["fake"]

    def lat(values: list[float]) -> str:
        top = max(values or [float("nan")])
        return f"{pct(values, 50):.0f} / {pct(values, 99):.0f} / {top:.0f} ms (n={len(values)})"

    rows = [
        ("jobs succeeded / submitted", f"{r['states'].get('succeeded', 0)} / {r['jobs']}  {r['states']}", ""),
        ("vendor latency", f"time-to-finish {args.finish:g} s, + {args.latency:g} s on every HTTP answer", ""),
        ("result video", {"tiny": "64x48, 8 frames", "720p": "1280x720, 5 s at 24 fps"}[args.video], ""),
        ("wall time, first submit -> all done", f"{r['wall_s']:.1f} s", ""),
        ("  of which submitting", f"{r['submit_s']:.1f} s",
         f"{args.submitters} client threads" if args.submit == "each" else f"/submit_many, {args.batch} per call"),
        ("throughput", f"{r['jobs'] / r['wall_s']:.1f} jobs/s", ""),
        ("job run time (claimed -> succeeded) p50 / max", f"{r['run_s_p50']:.1f} s / {r['run_s_max']:.1f} s", ""),
        ("  time queued (stored -> claimed) p50 / max", f"{r['queued_s_p50']:.2f} s / {r['queued_s_max']:.2f} s", ""),
        ("studio threads idle / peak", f"{r['threads_idle']} / {r['threads_peak']}", "/proc/<pid>/status, with its children"),
        ("io-lane workers", f"{r['io_workers']}", "configured; target <= 4"),
        ("vendor requests in flight at once, max", f"{r['max_inflight']}", "seen by the fake"),
        ("/status via gradio_client p50 / p99 / max", lat(r["during"]["client"]), "target p99 <= 200 ms"),
        ("  same, while submitting", lat(r["while_submitting"]["client"]), ""),
        ("  same, at rest before the run", lat(r["rest"]["client"]), ""),
        ("/status via Gradio HTTP call API", lat(r["during"]["http"]), ""),
        ("  same, while submitting", lat(r["while_submitting"]["http"]), ""),
        ("  same, once all are submitted (creates, polls, downloads in flight)", lat(r["after_submitting"]["http"]),
         ""),
        ("  same, at rest before the run", lat(r["rest"]["http"]), ""),
        ("  bare Gradio app's /status at rest", lat(r["bare_rest"]), "same run, same call path"),
        ("  slowest samples: ms at s after the first submit",
         ", ".join(f"{ms:.0f} at {at:.1f}" for ms, at in r["slowest"]), ""),
        ("  p99 under load / bare p99 at rest", f"{pct(r['during']['http'], 99) / pct(r['bare_rest'], 99):.2f}x",
         "goal <= 1.5x"),
        ("one job alone (vendor time) / wall for all", f"{r['vendor_s']:.1f} s / {r['wall_s']:.1f} s = "
         f"{r['wall_s'] / r['vendor_s']:.2f}x", "goal <= 1.2x"),
        *[(f"  {name}, p50 / p99 / max", f"{pct(v, 50):.2f} / {pct(v, 99):.2f} / {max(v or [float('nan')]):.2f} s",
            "n=" + str(len(v))) for name, v in r["phases"]["all"].items()],
        ("  the job that finished last: the same gaps, in order",
         " / ".join(f"{v:.2f}" for k, v in r["phases"]["last"].items() if k != "polls") + " s",
         f"{r['phases']['last'].get('polls', 0)} poll(s)"),
        ("  when the vendor saw them, s after the first submit: first / p50 / last",
         "; ".join(f"{name} {min(v or [0]):.2f} / {pct(v, 50):.2f} / {max(v or [0]):.2f}"
                   for name, v in r["phases"]["spread"].items()), "finishes: as the studio wrote them"),
        ("REST /health (no Gradio queue)", lat(r["during"]["health"]), ""),
        ("  same, at rest before the run", lat(r["rest"]["health"]), ""),
        ("  the cloud process: in the kernel (system time) / per job",
         f"{r['cpu']['cloud_sys']:.1f} s / {1000 * r['cpu']['cloud'] / r['jobs']:.1f} ms", ""),
        ("studio RSS idle / peak (VmHWM), with its children", f"{r['rss_idle_mb']:.0f} / {r['rss_peak_mb']:.0f} MB", ""),
        ("fake requests: create / poll / download", f"{f['create']} / {f['poll']} / {f['download']}",
         "creates include the warm-up job"),
        ("client errors / failed samples", f"{len(r['client_errors'])} / {r['sample_errors']}",
         ", ".join(sorted(set(r["client_errors"])))),
        ("machine load average, start / end", f"{r['load'][0]:.1f} / {r['load'][1]:.1f} on {os.cpu_count()} CPUs", ""),
        ("CPU seconds during the run: studio server / its cloud process / fake vendor / bench client / whole machine",
         f"{r['cpu']['studio']:.1f} / {r['cpu']['cloud']:.1f} / {r['cpu']['vendor']:.1f} / {r['cpu']['bench']:.1f} / "
         f"{r['cpu']['machine']:.1f} "
         f"(of {os.cpu_count() * r['wall_s']:.0f} available)", "the rest of the machine: other processes"),
    ]
    width = max(len(a) for a, _, _ in rows)
    return "\n".join(f"{a:<{width}}  {b}" + (f"   ({c})" if c else "") for a, b, c in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--finish", type=float, default=2.0, help="seconds from create until the task succeeds")
    parser.add_argument("--video", choices=("tiny", "720p"), default="tiny",
                        help="what each task returns: a tiny clip, or a 720p one (a real result's probe and thumbnail)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every HTTP answer")
    parser.add_argument("--key-from", choices=("env", "file"), default="env",
                        help="the DashScope key in the studio's environment, or in its secrets file (as the UI saves it)")
    parser.add_argument("--io-workers", type=int, default=4)
    parser.add_argument("--submitters", type=int, default=8, help="client threads calling /submit")
    parser.add_argument("--submit", choices=("each", "batch"), default="each",
                        help="one /submit call per job (each), or /submit_many with --batch jobs per call")
    parser.add_argument("--batch", type=int, default=500, help="jobs per /submit_many call")
    parser.add_argument("--poll-scale", type=float, default=1.0, help="XIANYING_POLL_SCALE for the studio")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--async-cloud", choices=("on", "off"), default="on",
                        help="queue.async_cloud: each cloud job's create, polls and downloads on the event loop "
                             "(on) or on the io workers (off)")
    parser.add_argument("--cloud-process", choices=("on", "off"), default="on",
                        help="queue.cloud_process: the chains in a child process of the studio (on) or in its "
                             "server process (off)")
    parser.add_argument("--cloud-processes", type=int, default=1, help="queue.cloud_processes")
    parser.add_argument("--concurrency", type=int, default=512,
                        help="XIANYING_CLOUD_CONCURRENCY: requests in flight per vendor on the event loop")
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    result = run(args)
    print(table(result, args))


if __name__ == "__main__":
    main()
