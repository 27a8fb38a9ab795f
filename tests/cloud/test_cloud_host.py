"""Cloud chains in a process of their own (``queue.cloud_process``: app/cloud_host.py).

A real studio hands its cloud jobs to a real child process, which talks to the loopback fake
vendor through the real adapters. The tests kill that child at the worst moments (a create on the
wire, a job between polls) and check what a user would: the job still finishes, and the vendor saw
exactly one create. A cancel and a studio stop reach the child through the job row and the pipe.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.access import LOCAL
from tests.cloud.fakeserver import Fault
from tests.cloud.helpers import wait_job, wait_until
from tests.cloud.vendors import VENDORS

ON = {"queue": {"cloud_process": True}}


@pytest.fixture(autouse=True)
def cloud_process_on(monkeypatch):
    monkeypatch.setenv("XIANYING_CLOUD_PROCESS", "1")  # tests/conftest.py turns it off for the other tests


def submit(studio, prompt: str) -> str:
    return studio.service.submit({"engine": "dashscope", "prompt": prompt, "params": VENDORS["dashscope"].params},
                                 LOCAL).id


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def started_child(studio) -> int:
    host = studio.runner.host
    assert host is not None, "cloud_process is on: the studio has a cloud host"
    assert host.ready.wait(60), "the cloud process never said it was ready"
    assert host.pid != os.getpid()
    return host.pid


def test_jobs_run_in_the_cloud_process_and_finish(studio_for):
    studio, fake = studio_for("dashscope", config=ON)
    pid = started_child(studio)
    ids = [submit(studio, f"御剑飞行 {i}") for i in range(6)]
    jobs = [wait_job(studio, job_id, timeout=60) for job_id in ids]
    assert [job.status for job in jobs] == ["succeeded"] * 6, [job.error for job in jobs]
    assert fake.count("create") == 6
    assert all((studio.settings.workspace / job.outputs[0]["file"]).stat().st_size > 0 for job in jobs)
    # the child says "ended" for each step it was handed, once the chain is over: just after the row's
    # last write, which wait_job may have seen first
    wait_until(lambda: not studio.runner.host.handed, "the child ended every step it was handed", timeout=10)
    assert studio.runner.host.pid == pid and alive(pid)
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        nice = int(fh.read().rsplit(")", 1)[1].split()[16])
    assert nice == os.nice(0) + 10  # it yields the CPU to the studio's server


def test_new_jobs_go_to_the_running_cloud_process_without_a_queue_message(studio_for):
    studio, fake = studio_for("dashscope", config=ON)
    started_child(studio)
    request = {"engine": "dashscope", "prompt": "云海论剑", "params": VENDORS["dashscope"].params}
    ids = [job.id for job in studio.service.submit_many([request] * 5, LOCAL)]
    ids.append(submit(studio, "一剑光寒"))
    assert all(studio.service.get(job_id, LOCAL).huey_id is None for job_id in ids)  # no queue message
    jobs = [wait_job(studio, job_id, timeout=60) for job_id in ids]
    assert [job.status for job in jobs] == ["succeeded"] * 6, [job.error for job in jobs]
    assert fake.count("create") == 6
    wait_until(lambda: not studio.runner.host.handed, "the child ended every job it was handed", timeout=10)


def test_new_jobs_go_through_the_queue_when_the_cloud_process_cannot_take_them(studio_for):
    studio, fake = studio_for("dashscope", config=ON)
    started_child(studio)
    for child in studio.runner.host.children:  # as after MAX_FAILED_STARTS: the studio runs the chains itself
        child.failed = True
    job_id = submit(studio, "问道")
    assert studio.service.get(job_id, LOCAL).huey_id  # queued as before, for an io worker
    job = wait_job(studio, job_id, timeout=60)
    assert job.status == "succeeded", job.error
    assert fake.count("create") == 1


def test_only_new_cloud_chains_are_handed_over_and_a_refused_share_stays_for_the_queue(studio_for):
    from types import SimpleNamespace

    studio, _ = studio_for("dashscope", config=ON)

    class Host:  # what the runner hands over; the child of job "a" is not running
        asked: list = []

        def hand_new(self, job_ids):
            self.asked.append(job_ids)
            return [job_id for job_id in job_ids if job_id == "a"]

    host, real = Host(), studio.runner.host
    jobs = [SimpleNamespace(id="a", kind="cloud", engine="dashscope"),
            SimpleNamespace(id="b", kind="local", engine="dashscope"),
            SimpleNamespace(id="c", kind="cloud", engine="uninstalled"),
            SimpleNamespace(id="d", kind="cloud", engine="dashscope")]
    studio.runner.host = host
    try:
        left = studio.runner.hand_new(jobs)
    finally:
        studio.runner.host = real  # (the studio's stop closes the real one)
    assert host.asked == [["a", "d"]]
    assert [job.id for job in left] == ["a", "b", "c"]  # in their order, for the queue


def test_a_cloud_process_killed_while_a_create_is_on_the_wire_is_replaced_and_the_vendor_sees_one_create(
        studio_for):
    studio, fake = studio_for("dashscope", config=ON)
    pid = started_child(studio)
    fake.faults["create"] = [Fault(late=3.0)]  # the vendor makes the task; its answer is late
    job_id = submit(studio, "雷劫降临")
    wait_until(lambda: fake.tasks, "the vendor made the task")
    os.kill(pid, signal.SIGKILL)  # with the answer still on its way
    wait_until(lambda: studio.runner.host.pid != pid and studio.runner.host.ready.is_set(), "a new cloud process")
    job = wait_job(studio, job_id, timeout=60)
    assert job.status == "succeeded", job.error
    assert fake.count("create") == 1  # the new child found the task the dead one had asked for


def test_a_cloud_process_killed_between_polls_is_replaced_and_the_job_resumes(studio_for):
    studio, fake = studio_for("dashscope", config=ON)
    pid = started_child(studio)
    fake.plan = ["RUNNING"]  # until released
    job_id = submit(studio, "剑气纵横三万里")
    task_id = wait_until(lambda: studio.service.get(job_id, LOCAL).remote_id, "the task id is on the row")
    wait_until(lambda: fake.tasks[task_id]["queries"] >= 1, "a first poll")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: studio.runner.host.pid != pid, "a new cloud process")
    asked = fake.tasks[task_id]["queries"]
    wait_until(lambda: fake.tasks[task_id]["queries"] > asked, "the new process polls the same task")
    fake.plan = ["RUNNING"] * fake.tasks[task_id]["queries"] + ["SUCCEEDED"]
    job = wait_job(studio, job_id, timeout=60)
    assert job.status == "succeeded", job.error
    assert fake.count("create") == 1


def test_a_cancel_in_the_studio_stops_the_chain_in_the_cloud_process(studio_for):
    studio, fake = studio_for("dashscope", config=ON)
    started_child(studio)
    fake.plan = ["RUNNING"]
    job_id = submit(studio, "闭关修炼")
    task_id = wait_until(lambda: studio.service.get(job_id, LOCAL).remote_id, "the task id is on the row")
    wait_until(lambda: fake.tasks[task_id]["queries"] >= 1, "a first poll")
    studio.service.cancel(job_id, LOCAL)
    assert studio.service.get(job_id, LOCAL).status == "cancelled"
    wait_until(lambda: job_id not in studio.runner.host.handed, "the child ends the chain")
    asked = fake.tasks[task_id]["queries"]
    time.sleep(1.0)  # several poll intervals at the tests' poll scale
    assert fake.tasks[task_id]["queries"] == asked
    assert studio.service.get(job_id, LOCAL).status == "cancelled"


def test_a_studio_stop_ends_the_cloud_process_and_the_next_start_finishes_the_job(studio_for, workspace):
    from app.settings import load_settings
    from app.studio import Studio

    studio, fake = studio_for("dashscope", config=ON)
    pid = started_child(studio)
    fake.plan = ["RUNNING"]
    job_id = submit(studio, "渡劫飞升")
    task_id = wait_until(lambda: studio.service.get(job_id, LOCAL).remote_id, "the task id is on the row")
    studio.stop()
    assert not alive(pid)
    fake.plan = ["SUCCEEDED"]
    again = Studio(load_settings(workspace))
    again.start()
    try:
        job = wait_job(again, job_id, timeout=60)
        assert job.status == "succeeded", job.error
        assert job.remote_id == task_id and fake.count("create") == 1
    finally:
        again.stop()


def test_the_cloud_process_is_off_where_it_is_not_wanted(studio_for):
    studio, _ = studio_for("dashscope", config={"queue": {"async_cloud": False}})
    assert studio.runner.host is None  # no chains: the io workers run each step


def test_the_setting_turns_it_off(studio_for, monkeypatch):
    monkeypatch.delenv("XIANYING_CLOUD_PROCESS")
    studio, fake = studio_for("dashscope", config={"queue": {"cloud_process": False}})
    assert studio.runner.host is None
    job = wait_job(studio, submit(studio, "山门"), timeout=60)
    assert job.status == "succeeded" and fake.count("create") == 1


def test_two_cloud_processes_share_the_jobs(studio_for, monkeypatch):
    monkeypatch.setenv("XIANYING_CLOUD_PROCESSES", "2")
    studio, fake = studio_for("dashscope", config=ON)
    host = studio.runner.host
    assert len(host.children) == 2
    for child in host.children:
        assert child.ready.wait(60)
    pids = {child.pid for child in host.children}
    assert len(pids) == 2 and os.getpid() not in pids and all(alive(pid) for pid in pids)
    ids = [submit(studio, f"万剑归宗 {i}") for i in range(12)]
    jobs = [wait_job(studio, job_id, timeout=60) for job_id in ids]
    assert [job.status for job in jobs] == ["succeeded"] * 12, [job.error for job in jobs]
    assert fake.count("create") == 12
    assert {host.child(job_id).slot for job_id in ids} == {0, 1}  # (12 random ids all in one: 1 in 2048)
    wait_until(lambda: not host.handed, "the children ended every step they were handed", timeout=10)
    studio.stop()
    assert not any(alive(pid) for pid in pids)


def test_the_child_takes_waiting_steps_together_and_a_stop_ends_the_batch():
    import queue

    from app.cloud_host import BATCH, _next_steps

    todo = queue.SimpleQueue()
    for i in range(BATCH + 3):
        todo.put((f"job{i}", None))
    batch, stop = _next_steps(todo)
    assert len(batch) == BATCH and not stop  # at most BATCH at once
    batch, stop = _next_steps(todo)
    assert [job_id for job_id, _ in batch] == [f"job{BATCH + i}" for i in range(3)] and not stop
    todo.put(("a", None))
    todo.put(("b", 4))
    todo.put(None)
    todo.put(("after the stop", None))
    assert _next_steps(todo) == ([("a", None), ("b", 4)], True)  # the steps before the stop still run


def test_claiming_many_chains_claims_only_the_queued_ones_in_one_write(tmp_path, monkeypatch):
    import uuid

    from app import jobstate
    from app.db import Job, db, open_db

    open_db(tmp_path / "studio.db")

    def job(**fields) -> str:
        return Job.create(id=uuid.uuid4().hex, engine="dashscope", kind="cloud", lane="io", prompt="剑", **fields).id

    fresh = [job() for _ in range(3)]
    resumed = job(remote_id="task-1", remote_phase="polling")  # queued again with its task: keeps its phase
    cancelled, running = job(status="cancelled"), job(status="running", attempts=1, fence=1, lease_owner="other")
    statements, real = [], db.obj.execute_sql

    def counted(sql, *args, **kwargs):
        statements.append(sql)
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(db.obj, "execute_sql", counted)
    n = jobstate.claim_chains(fresh + [resumed, cancelled, running], "me", 60)
    monkeypatch.undo()
    assert n == 4 and len([s for s in statements if s.startswith("UPDATE")]) == 1
    rows = {j.id: j for j in Job.select()}
    for job_id in fresh:
        assert (rows[job_id].status, rows[job_id].remote_phase, rows[job_id].message) == (
            "running", "creating", "sending to provider")
        assert (rows[job_id].attempts, rows[job_id].fence, rows[job_id].lease_owner) == (1, 1, "me")
        assert rows[job_id].started_at and rows[job_id].lease_expires > rows[job_id].started_at
    assert (rows[resumed].status, rows[resumed].remote_phase, rows[resumed].message) == ("running", "polling", "starting")
    assert rows[cancelled].status == "cancelled"
    assert (rows[running].attempts, rows[running].fence, rows[running].lease_owner) == (1, 1, "other")
    assert jobstate.claim_chains([], "me", 60) == 0


def test_a_batch_handed_at_once_is_claimed_once_each_and_finishes(studio_for):
    studio, fake = studio_for("dashscope", config=ON)
    started_child(studio)
    request = {"engine": "dashscope", "prompt": "御剑飞行", "params": VENDORS["dashscope"].params}
    jobs = studio.service.submit_many([request] * 24, LOCAL)
    done = [wait_job(studio, job.id, timeout=90) for job in jobs]
    assert [job.status for job in done] == ["succeeded"] * 24, [job.error for job in done]
    assert fake.count("create") == 24
    assert {(job.attempts, job.fence) for job in done} == {(1, 1)}  # each claimed exactly once
    wait_until(lambda: not studio.runner.host.handed, "the child ended every step it was handed", timeout=10)
