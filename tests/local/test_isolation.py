"""Local jobs in a worker process (gpu_pool.isolation: process): a cancel or a stop ends a run
even in the middle of a step, and an interrupted job keeps its place in the queue (issue 13,
items 7 and 14).

The slow job is the tiny Wan model at a large size: its first step takes seconds to minutes on a
CPU, much longer than ``kill_after_s``, so only the process kill can stop it in time."""

from __future__ import annotations

import pytest

from app.access import LOCAL
from app.db import Job, db
from tests.conftest import install_weights, wait_for

WAN = "wan2.1-t2v-1.3b"
SLOW = {"engine": WAN, "prompt": "a slow step", "params": {"width": 512, "height": 512, "num_frames": 121,
                                                          "num_inference_steps": 50, "seed": 3}}
TINY = {"engine": WAN, "prompt": "quick", "params": {"width": 16, "height": 16, "num_frames": 5,
                                                    "num_inference_steps": 2, "seed": 4}}


def make_studio(workspace, isolation: str = "process"):
    from app.settings import load_settings
    from app.studio import Studio

    st = Studio(load_settings(workspace, gpu_pool={"isolation": isolation, "kill_after_s": 0.3}))
    st.start()
    return st


@pytest.fixture
def ws(workspace, tiny_wan_dir):
    install_weights(workspace, WAN, tiny_wan_dir)
    return workspace


def row(job_id):
    return Job.get_by_id(job_id)


def in_first_step(job_id):
    """Running, and its first step has begun (the engine reported step 0): the next step
    boundary, where a cooperative cancel could act, is a whole large step away."""
    r = row(job_id)
    return r.status == "running" and r.message == "step 0/50"


def finished(job_id, timeout=180):
    return wait_for(lambda: (r := row(job_id)).status in ("succeeded", "failed", "cancelled") and r, timeout)


def test_cancel_ends_a_step_in_progress_and_a_fresh_process_runs_the_next_job(ws):
    st = make_studio(ws)
    try:
        with db.connection_context():
            assert st.runner.isolation is not None
            slow = st.service.submit(SLOW, LOCAL)
            wait_for(lambda: in_first_step(slow.id), timeout=180, interval=0.02)
            first = st.runner.isolation.children[0]
            st.service.cancel(slow.id, LOCAL)
            done = finished(slow.id, timeout=60)
            assert done.status == "cancelled", (done.status, done.error)
            assert "mid-step" in done.message and done.outputs == [] and done.progress < 100
            wait_for(lambda: not (st.settings.staging_dir / slow.id).exists(), timeout=10)  # (just after the row)
            assert not first.alive() and st.runner.isolation.kills == 1
            quick = st.service.submit(TINY, LOCAL)
            ok = finished(quick.id)
            assert ok.status == "succeeded", ok.error
            assert st.runner.isolation.children[0].pid != first.pid
            assert (st.settings.workspace / ok.outputs[0]["file"]).stat().st_size > 0
    finally:
        st.stop()


def test_a_stop_mid_step_puts_the_job_back_first_in_line(ws):
    st = make_studio(ws)
    with db.connection_context():
        a = st.service.submit(SLOW, LOCAL)
        wait_for(lambda: in_first_step(a.id), timeout=180, interval=0.02)
        child = st.runner.isolation.children[0]
        b = st.service.submit(TINY, LOCAL)
        c = st.service.submit({**TINY, "prompt": "third"}, LOCAL)
    st.stop()  # what SIGTERM does: the step in progress does not get to finish
    assert not child.alive()
    with db.connection_context():
        back = row(a.id)
        assert back.status == "queued" and back.attempts == 0 and back.lease_owner is None, back.message
        assert back.started_at is not None  # it had started: at the next start it goes first
        assert row(b.id).status == row(c.id).status == "queued"
        assert not (ws / "tmp" / a.id).exists()

    st = make_studio(ws)
    try:
        with db.connection_context():
            wait_for(lambda: row(a.id).status == "running", timeout=180, interval=0.05)
            assert row(b.id).status == row(c.id).status == "queued"  # one gpu worker: A holds it
    finally:
        st.stop()
    with db.connection_context():
        assert row(a.id).status == "queued" and row(a.id).attempts == 0


def test_thread_mode_resumes_the_interrupted_job_before_later_ones(ws):
    """The same order without process isolation: A stops at its next step, then runs first."""
    many = {**TINY, "params": {**TINY["params"], "num_inference_steps": 20}}
    st = make_studio(ws, isolation="thread")
    assert st.runner.isolation is None
    with db.connection_context():
        a = st.service.submit(many, LOCAL)
        wait_for(lambda: row(a.id).status == "running" and row(a.id).progress > 0, timeout=120, interval=0.01)
        b = st.service.submit(TINY, LOCAL)
        c = st.service.submit({**TINY, "prompt": "third"}, LOCAL)
    st.stop()
    with db.connection_context():
        assert row(a.id).status == "queued" and row(a.id).attempts == 0
    st = make_studio(ws, isolation="thread")
    try:
        with db.connection_context():
            rows = [finished(j.id) for j in (a, b, c)]
            assert [r.status for r in rows] == ["succeeded"] * 3, [r.error for r in rows]
            assert rows[0].started_at < rows[1].started_at < rows[2].started_at
            assert rows[0].attempts == 1
    finally:
        st.stop()
