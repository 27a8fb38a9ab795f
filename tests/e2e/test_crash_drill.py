"""kill -9 the studio with one job running and one queued; restart; both finish, nothing partial."""

from __future__ import annotations

import json
from pathlib import Path

from gradio_client import Client

from tests.conftest import install_weights, wait_for
from tests.e2e.conftest import wait_status
from tests.e2e.proc import StudioProcess

WAN = "wan2.1-t2v-1.3b"


def _outputs_are_whole(ws):
    for job_json in ws.glob("outputs/*/*/job.json"):
        data = json.loads(job_json.read_text(encoding="utf-8"))
        for out in data["outputs"]:
            assert (ws / out["file"]).stat().st_size > 0
    assert not list(ws.glob("outputs/**/.*.part")) and not list(ws.glob("outputs/**/.*.mp4"))


def child_pids(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_kill9_while_running_and_queued_then_restart(tmp_path, tiny_wan_dir):
    ws = tmp_path / "ws"
    ws.mkdir()
    install_weights(ws, WAN, tiny_wan_dir)
    # launch.py's default: local jobs in a worker process (the test suite's default is in-process)
    env = {"XIANYING_SECRETS": str(tmp_path / "secrets.yaml"), "XIANYING_GPU_ISOLATION": "process"}
    proc = StudioProcess(ws, env=env).start()
    client = Client(proc.url, download_files=str(tmp_path / "dl"), verbose=False)
    slow = {"engine": WAN, "prompt": "slow", "params": {"width": 96, "height": 96, "num_frames": 33,
                                                       "num_inference_steps": 120, "seed": 7}}
    quick = {"engine": WAN, "prompt": "queued behind", "params": {"width": 16, "height": 16, "num_frames": 5,
                                                                  "num_inference_steps": 2, "seed": 8}}
    running = client.predict(slow, api_name="/submit")["task_id"]
    wait_status(client, running, statuses={"running"}, min_progress=5)
    queued = client.predict(quick, api_name="/submit")["task_id"]
    assert client.predict(queued, api_name="/status")["status"] == "queued"
    workers = child_pids(proc.proc.pid)
    assert workers or not Path("/proc").exists()  # the gpu worker process (and multiprocessing's tracker)
    proc.kill9()
    assert (ws / "tmp" / running).exists()  # the killed run left its staging folder...
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30)  # its worker process followed

    proc2 = StudioProcess(ws, env=env, port=proc.port).start()
    try:
        client = Client(proc2.url, download_files=str(tmp_path / "dl2"), verbose=False)
        first = wait_status(client, running, timeout=180)
        second = wait_status(client, queued, timeout=180)
        assert first["status"] == "succeeded" and first["attempts"] == 2, first
        assert second["status"] == "succeeded" and second["attempts"] == 1, second
        assert first["params"]["seed"] == 7
        assert not (ws / "tmp" / running).exists()  # ...which the restart removed
        _outputs_are_whole(ws)
    finally:
        assert proc2.stop() == 0, proc2.log()


def test_sigterm_mid_step_requeues_the_job_first_in_line_and_cancel_ends_a_step(tmp_path, tiny_wan_dir):
    """Issue 13, items 7 and 14, through launch.py: a step that takes far longer than a stop or a
    cancel may wait (the tiny model at 512×512, 121 frames) is ended by killing the worker
    process; after SIGTERM the job is queued again, not counted, and runs before later jobs."""
    import sqlite3

    ws = tmp_path / "ws"
    ws.mkdir()
    install_weights(ws, WAN, tiny_wan_dir)
    env = {"XIANYING_SECRETS": str(tmp_path / "secrets.yaml"), "XIANYING_GPU_ISOLATION": "process"}
    proc = StudioProcess(ws, env=env).start()
    client = Client(proc.url, download_files=str(tmp_path / "dl"), verbose=False)
    slow = {"engine": WAN, "prompt": "a long step", "params": {"width": 512, "height": 512, "num_frames": 121,
                                                              "num_inference_steps": 50, "seed": 7}}
    quick = {"engine": WAN, "prompt": "submitted later", "params": {"width": 16, "height": 16, "num_frames": 5,
                                                                    "num_inference_steps": 2, "seed": 8}}
    first = client.predict(slow, api_name="/submit")["task_id"]
    wait_status(client, first, statuses={"running"}, timeout=180)
    later = client.predict(quick, api_name="/submit")["task_id"]
    assert proc.stop() == 0, proc.log()  # SIGTERM; StudioProcess.stop kills it (code -9) after 30 s

    with sqlite3.connect(ws / "studio.db") as con:
        rows = dict(con.execute("select id, status || ':' || attempts from jobs").fetchall())
    assert rows == {first: "queued:0", later: "queued:0"}
    assert not (ws / "tmp" / first).exists()

    proc2 = StudioProcess(ws, env=env, port=proc.port).start()
    try:
        client = Client(proc2.url, download_files=str(tmp_path / "dl2"), verbose=False)
        wait_status(client, first, statuses={"running"}, timeout=180)
        assert client.predict(later, api_name="/status")["status"] == "queued"  # it kept its place
        client.predict(first, api_name="/cancel")
        cancelled = wait_status(client, first, timeout=60)
        assert cancelled["status"] == "cancelled", cancelled
        done = wait_status(client, later, timeout=180)  # in a fresh worker process
        assert done["status"] == "succeeded" and done["attempts"] == 1, done
        _outputs_are_whole(ws)
    finally:
        assert proc2.stop() == 0, proc2.log()
