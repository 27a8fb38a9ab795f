"""A cloud job as one chain on the event loop (app/cloud_chain.py): a vendor slow to answer holds no thread.

Every test goes through the real adapters and the loopback fakes. Nothing is timed: the fakes' gates
(``threading.Barrier``) open only when that many requests are in flight at once, and the tests count
requests, tasks and threads.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.access import LOCAL
from engines.cloud import aio
from tests.cloud.fakeserver import Fault
from tests.cloud.helpers import wait_job, wait_until
from tests.cloud.vendors import VENDORS

IDS = list(VENDORS)
POLL_ROUTE = {"dashscope": "poll", "zhipu": "poll", "ark": "get", "tencent-vod": "DescribeTaskDetail"}
JOBS = 8


def submit(studio, vendor_id: str, prompt: str) -> str:
    return studio.service.submit({"engine": vendor_id, "prompt": prompt, "params": VENDORS[vendor_id].params},
                                 LOCAL).id


def chains_alive() -> int:
    """Coroutines still running on the cloud loop (a chain, or a request of one)."""
    async def count() -> int:
        return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    return aio.submit(count()).result(10)


def studio_threads() -> list[str]:
    """The studio's own threads (the fakes serve each connection on a thread of their own: not counted)."""
    return sorted(t.name for t in threading.enumerate()
                  if t.name.startswith(("cloud-", "Worker-", "Scheduler", "AnyIO")))


# --- many jobs, few threads, each job in order ---------------------------------------------------
@pytest.mark.parametrize("vendor_id", IDS)
def test_creates_and_downloads_of_many_jobs_are_in_flight_at_once_with_one_io_worker(studio_for, vendor_id):
    studio, fake = studio_for(vendor_id, config={"queue": {"io_workers": 1}})
    seen: dict[str, list[str]] = {}
    route = VENDORS[vendor_id].create_route
    # each gate opens only when all JOBS requests of that kind are in flight together: with one io
    # worker that is possible only if no thread waits for an answer
    fake.gates[route] = threading.Barrier(JOBS, action=lambda: seen.setdefault("create", studio_threads()))
    fake.gates["download"] = threading.Barrier(JOBS, action=lambda: seen.setdefault("download", studio_threads()))
    prompts = [f"chain job {i} of {vendor_id}" for i in range(JOBS)]
    ids = [submit(studio, vendor_id, p) for p in prompts]
    jobs = [wait_job(studio, job_id, timeout=60) for job_id in ids]
    assert all(job.status == "succeeded" for job in jobs), [job.error for job in jobs]
    assert fake.max_in_flight[route] >= JOBS and fake.max_in_flight["download"] >= JOBS
    for moment in ("create", "download"):  # while JOBS requests waited on the vendor
        names = seen[moment]
        assert names.count("cloud-aio") == 1
        assert len([n for n in names if n.startswith("cloud-done")]) <= 4
        assert len([n for n in names if n.startswith("Worker-")]) <= 2  # the io worker and the gpu lane's
        assert len(names) < 20, names  # no thread per job
    # per job: exactly one create, then its polls, then its download, in that order
    requests = list(fake.requests)
    poll_route = POLL_ROUTE[vendor_id]
    for prompt, job in zip(prompts, jobs):
        creates = [i for i, r in enumerate(requests) if fake.route(r) == route and prompt.encode() in r.body]
        polls = [i for i, r in enumerate(requests) if fake.route(r) == poll_route
                 and (job.remote_id in r.path or job.remote_id.encode() in r.body)]
        downloads = [i for i, r in enumerate(requests) if fake.route(r) == "download" and job.remote_id in r.path]
        assert len(creates) == 1 and polls and downloads, (prompt, creates, polls, downloads)
        assert creates[0] < min(polls) and max(polls) < min(downloads)
        assert job.outputs and job.outputs[0]["kind"] == "video"
        assert "has_audio" in job.outputs[0]


def test_a_job_with_sound_keeps_has_audio_on_the_async_download(studio_for, mp4_sound_bytes):
    studio, fake = studio_for("dashscope")
    fake.video = mp4_sound_bytes
    job = wait_job(studio, submit(studio, "dashscope", "有声"), timeout=30)
    assert job.status == "succeeded", job.error
    assert job.outputs[0]["has_audio"] is True


def test_a_truncated_download_is_retried_and_an_expired_link_fails_plainly(studio_for):
    studio, fake = studio_for("dashscope")
    fake.inject("download", Fault(truncate=True))
    job = wait_job(studio, submit(studio, "dashscope", "截断"), timeout=30)
    assert job.status == "succeeded", job.error
    assert fake.count("download") == 2
    fake.expire_all()
    job = wait_job(studio, submit(studio, "dashscope", "过期"), timeout=30)
    assert job.status == "failed" and job.error_code == "url_expired", (job.status, job.error)
    assert list((studio.settings.staging_dir).glob("*/.*.part")) == []


# --- lost creates on the chain (the adapters' astart alone: tests/cloud/test_create_safety.py) ------
@pytest.mark.parametrize("vendor_id", ["dashscope", "ark"])
def test_lost_creates_of_concurrent_chained_jobs_each_adopt_their_own_task(studio_for, monkeypatch, vendor_id):
    monkeypatch.setenv("XIANYING_HTTP_TIMEOUT", "0.5")
    studio, fake = studio_for(vendor_id)
    vendor = VENDORS[vendor_id]
    fake.inject(vendor.create_route, Fault(truncate=True, times=4))
    prompts = [f"lost {i}" for i in range(4)]
    ids = [submit(studio, vendor_id, p) for p in prompts]
    jobs = [wait_job(studio, job_id, timeout=60) for job_id in ids]
    tasks = vendor.tasks(fake)
    assert len(tasks) == 4 and fake.count(vendor.create_route) == 4  # one create per job, never a re-send
    for prompt, job in zip(prompts, jobs):
        mine = [tid for tid, p in tasks.items() if p == prompt]
        if job.status == "succeeded":
            assert job.remote_id == mine[0]
        else:  # could not tell the tasks apart: it says so, and sent nothing more
            assert job.error_code == "uncertain_create", job.error


def test_zhipu_lost_create_on_the_chain_fails_in_both_languages(studio_for):
    studio, fake = studio_for("zhipu")
    fake.inject("create", Fault(status_after=502))
    job = wait_job(studio, submit(studio, "zhipu", "智谱"), timeout=30)
    assert job.status == "failed" and job.error_code == "uncertain_create"
    assert "Zhipu may have accepted this job" in job.error and "可能已接受该任务" in job.error_zh
    assert fake.count("create") == 1 and len(fake.tasks) == 1


# --- cancel mid-chain ---------------------------------------------------------------------------
def test_cancel_while_the_create_is_on_the_wire_cancels_the_task_it_made(studio_for):
    studio, fake = studio_for("dashscope")
    gate = fake.gates["create"] = threading.Barrier(2)  # the create waits for this test
    job_id = submit(studio, "dashscope", "取消创建")
    wait_until(lambda: fake.in_flight.get("create") == 1, "the create in flight")
    assert studio.service.cancel(job_id, LOCAL).status == "cancelled"
    gate.wait(10)
    wait_until(lambda: fake.count("cancel") == 1, "the vendor asked to cancel the task")
    wait_until(lambda: chains_alive() == 0, "the chain ended")
    job = studio.service.get(job_id, LOCAL)
    assert job.status == "cancelled" and job.remote_id in fake.tasks
    assert fake.count("poll") == 0 and fake.count("create") == 1


def test_cancel_while_a_poll_is_on_the_wire_stops_the_chain(studio_for):
    studio, fake = studio_for("zhipu")
    fake.plan = ["PROCESSING"]  # never finishes on its own
    gate = fake.gates["poll"] = threading.Barrier(2)
    job_id = submit(studio, "zhipu", "取消轮询")
    wait_until(lambda: fake.in_flight.get("poll") == 1, "a poll in flight")
    studio.service.cancel(job_id, LOCAL)
    gate.wait(10)
    wait_until(lambda: chains_alive() == 0, "the chain ended")
    job = studio.service.get(job_id, LOCAL)
    assert job.status == "cancelled" and fake.count("poll") == 1 and fake.count("download") == 0


def test_a_cancel_during_the_first_polls_wait_writes_no_answer(studio_for, monkeypatch):
    """The first poll's turn comes with the task id (no trip to the database before that poll): a cancel
    asked while the chain waits for it costs at most that one status query, whose answer is not written."""
    monkeypatch.setenv("XIANYING_POLL_SCALE", "0.5")  # the first DashScope poll waits 0.5 s
    studio, fake = studio_for("dashscope")
    fake.plan = ["SUCCEEDED"]
    job_id = submit(studio, "dashscope", "等待首次查询时取消")
    wait_until(lambda: studio.service.get(job_id, LOCAL).remote_id, "the task id on the row")
    assert studio.service.cancel(job_id, LOCAL).status == "cancelled"
    wait_until(lambda: not studio.runner.chains, "the chain ended")
    job = studio.service.get(job_id, LOCAL)
    assert job.status == "cancelled" and job.remote_status is None and not job.outputs
    assert fake.count("poll") <= 1 and fake.count("download") == 0


def test_a_job_retried_while_its_old_chain_waits_on_a_poll_runs_its_new_task_alone(studio_for):
    """Cancel, then Retry at once, while the first run's poll is still on the wire: the new run gets a chain
    of its own (before, the old chain's job id made the new run's step a no-op, and the job stayed
    "running"), and the old chain, answered later, writes nothing on the new run (its fence is old)."""
    studio, fake = studio_for("dashscope")
    fake.plan = ["SUCCEEDED"]
    gate = fake.gates["poll"] = threading.Barrier(2)  # the first run's poll waits for this test
    job_id = submit(studio, "dashscope", "取消后立即重试")
    wait_until(lambda: fake.in_flight.get("poll") == 1, "the first run's poll in flight")
    first_task = studio.service.get(job_id, LOCAL).remote_id
    assert studio.service.cancel(job_id, LOCAL).status == "cancelled"
    del fake.gates["poll"]
    fake.plan = ["RUNNING"]
    studio.service.retry(job_id, LOCAL)
    second_task = wait_until(lambda: (studio.service.get(job_id, LOCAL).remote_id or first_task) != first_task
                             and studio.service.get(job_id, LOCAL).remote_id, "the new run's task id")
    wait_until(lambda: fake.tasks[second_task]["queries"] >= 1, "the new run polls its own task")
    gate.wait(10)  # the old poll is answered now (the first task was cancelled at the vendor)
    wait_until(lambda: len(studio.runner.chains) == 1, "the old chain ended")
    assert studio.service.get(job_id, LOCAL).status == "running"
    fake.plan = ["SUCCEEDED"]
    job = wait_job(studio, job_id, timeout=30)
    assert job.status == "succeeded", job.error
    assert job.remote_id == second_task and fake.count("download") == 1 and fake.count("create") == 2
    assert [o["kind"] for o in job.outputs] == ["video"]
    assert (studio.settings.workspace / job.outputs[0]["file"]).stat().st_size > 0


@pytest.mark.parametrize("chained", [True, False], ids=["chain", "io-workers"])
def test_a_download_answered_to_a_cancelled_run_stays_out_of_the_retried_runs_folder(studio_for, chained):
    """Cancel during the first run's download, Retry, and let the old download finish while the new run's
    own download is on the wire: the old run's video (and its job.json) must not land in the folder the
    new run publishes. Both runs once shared staging/<job id>/, so the published folder held the cancelled
    task's video beside the new one (and on the io workers, the old run then deleted the new run's folder)."""
    studio, fake = studio_for("dashscope", config=None if chained else {"queue": {"async_cloud": False}})
    fake.plan = ["SUCCEEDED"]
    old_gate = fake.gates["download"] = threading.Barrier(2)  # the first run's download waits for this test
    job_id = submit(studio, "dashscope", "下载途中取消并重试")
    wait_until(lambda: fake.in_flight.get("download") == 1, "the first run's download in flight")
    old_folder = studio.runner.run_dir(job_id, studio.service.get(job_id, LOCAL).fence)
    assert old_folder.is_dir()
    assert studio.service.cancel(job_id, LOCAL).status == "cancelled"
    new_gate = fake.gates["download"] = threading.Barrier(2)  # and the new run's, after it
    studio.service.retry(job_id, LOCAL)
    wait_until(lambda: fake.in_flight.get("download") == 2, "the new run's download in flight")
    old_gate.wait(10)  # the old download is answered now, into its own folder, which it then deletes
    wait_until(lambda: not old_folder.exists() and (not chained or len(studio.runner.chains) == 1),
               "the old run ended")
    new_gate.wait(10)
    job = wait_job(studio, job_id, timeout=30)
    assert job.status == "succeeded", job.error
    folder = studio.settings.workspace / job.output_dir
    videos = sorted(p.name for p in folder.glob("*.mp4"))
    assert videos == [job.outputs[0]["file"].rsplit("/", 1)[-1]]
    record = __import__("json").loads((folder / "job.json").read_text(encoding="utf-8"))
    assert [o["file"] for o in record["outputs"]] == [o["file"] for o in job.outputs]
    wait_until(lambda: not (studio.settings.staging_dir / job_id).exists(), "no staging folder left")


def test_a_create_answered_after_cancel_and_retry_is_left_to_the_new_run(studio_for, monkeypatch):
    """The first run's create is answered only after Cancel and Retry: its chain neither writes that task id
    on the new run's row nor cancels the task (the new run's create resumed from the same journal note,
    and could have adopted it); the new run ends with its own task."""
    monkeypatch.setenv("XIANYING_CREATE_QUIET_S", "0")  # an empty lookup means "never made": the new run creates
    studio, fake = studio_for("dashscope")
    fake.plan = ["SUCCEEDED"]
    gate = fake.gates["create"] = threading.Barrier(2)  # the first create waits for this test
    job_id = submit(studio, "dashscope", "创建途中取消并重试")
    wait_until(lambda: fake.in_flight.get("create") == 1, "the first run's create in flight")
    assert studio.service.cancel(job_id, LOCAL).status == "cancelled"
    del fake.gates["create"]
    studio.service.retry(job_id, LOCAL)
    job = wait_job(studio, job_id, timeout=30)
    assert job.status == "succeeded", job.error
    new_task = job.remote_id
    gate.wait(10)  # the vendor makes the first run's task now, and answers
    wait_until(lambda: len(fake.tasks) == 2 and not studio.runner.chains, "the first run's chain ended")
    job = studio.service.get(job_id, LOCAL)
    assert job.status == "succeeded" and job.remote_id == new_task and fake.count("cancel") == 0


@pytest.mark.parametrize("vendor_id", ["dashscope", "zhipu"])
def test_retry_of_a_cancelled_job_sends_a_create_of_its_own(studio_for, vendor_id):
    """DashScope's and Zhipu's create notes name a task answered but not yet committed ("follow it" after a
    crash). A cancel left that note behind, so Retry followed the cancelled task (and failed "Cancelled at
    the provider") instead of running the job again."""
    studio, fake = studio_for(vendor_id)
    fake.plan = ["PROCESSING" if vendor_id == "zhipu" else "RUNNING"]
    job_id = submit(studio, vendor_id, "取消后重试")
    wait_until(lambda: fake.count("poll") >= 1, "a first poll")
    first_task = studio.service.get(job_id, LOCAL).remote_id
    assert studio.service.cancel(job_id, LOCAL).status == "cancelled"
    wait_until(lambda: not studio.runner.chains, "the chain ended")
    fake.plan = ["SUCCESS" if vendor_id == "zhipu" else "SUCCEEDED"]
    job = wait_job(studio, studio.service.retry(job_id, LOCAL).id, timeout=30)
    assert job.status == "succeeded", job.error
    assert job.remote_id != first_task and len(fake.tasks) == 2


# --- stop and restart -----------------------------------------------------------------------------
class Studios:
    """Studios on one workspace, one at a time: ``start()`` stops the running one first; ``stop()``."""

    def __init__(self, workspace):
        self.workspace, self.running = workspace, []

    def start(self):
        from app.db import db
        from app.settings import load_settings
        from app.studio import Studio

        self.stop()
        st = Studio(load_settings(self.workspace))
        st.start()
        ctx = db.connection_context()
        ctx.__enter__()
        self.running.append((st, ctx))
        return st

    def stop(self):
        for st, ctx in self.running:
            ctx.__exit__(None, None, None)
            st.stop()
        self.running.clear()


@pytest.fixture
def studios(workspace):
    made = Studios(workspace)
    yield made
    made.stop()


@pytest.fixture
def dashscope_fake(mp4_bytes, monkeypatch):
    fake = VENDORS["dashscope"].serve(mp4_bytes, monkeypatch)
    yield fake
    fake.stop()


def test_a_studio_stopped_mid_poll_resumes_the_chain_at_its_next_start(studios, dashscope_fake):
    fake = dashscope_fake
    fake.plan = ["RUNNING"]
    studio = studios.start()
    job_id = submit(studio, "dashscope", "停在轮询")
    wait_until(lambda: fake.count("poll") >= 1, "a poll")
    studio = studios.start()  # stop (the chain is cut where it stands), start again on the same workspace
    fake.plan = ["SUCCEEDED"]
    job = wait_job(studio, job_id, timeout=30)
    assert job.status == "succeeded", job.error
    assert fake.count("create") == 1 and len(fake.tasks) == 1


def test_a_studio_stopped_mid_create_looks_the_task_up_at_its_next_start(studios, dashscope_fake, monkeypatch):
    monkeypatch.setenv("XIANYING_CREATE_QUIET_S", "3600")  # an unlisted task is never taken for "not made"
    fake = dashscope_fake
    gate = fake.gates["create"] = threading.Barrier(2)
    studio = studios.start()
    job_id = submit(studio, "dashscope", "停在创建")
    wait_until(lambda: fake.in_flight.get("create") == 1, "the create in flight")
    studios.stop()  # the loop's shutdown cuts the create: its answer never arrives
    gate.wait(10)  # the vendor makes the task anyway
    wait_until(lambda: len(fake.tasks) == 1, "the vendor made the task")
    fake.gates.clear()
    studio = studios.start()
    job = wait_job(studio, job_id, timeout=30)
    assert job.status == "succeeded", job.error
    assert fake.count("create") == 1 and fake.count("list") >= 1  # looked up, never sent twice
    assert job.remote_id == next(iter(fake.tasks))


@pytest.mark.parametrize("vendor_id", IDS)
def test_sync_path_still_runs_create_poll_download_on_the_io_workers(studio_for, vendor_id):
    studio, fake = studio_for(vendor_id, config={"queue": {"async_cloud": False}})
    job = wait_job(studio, submit(studio, vendor_id, "同步路径"), timeout=30)
    assert job.status == "succeeded", job.error
    assert fake.count(VENDORS[vendor_id].create_route) == 1 and fake.count("download") >= 1
    assert job.outputs and "has_audio" in job.outputs[0]


def test_a_job_json_that_cannot_be_written_fails_the_job_and_leaves_nothing(studio_for, monkeypatch):
    """A chain writes job.json on a file thread (app/runner.py Finish.write): a full disk there fails the
    job with a message, removes its staging folder and publishes nothing, instead of leaving it running."""
    from app import runner as runner_module

    studio, fake = studio_for("dashscope")

    def full_disk(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner_module.Finish, "write", full_disk)
    job = wait_job(studio, submit(studio, "dashscope", "洞府"), timeout=60)
    assert job.status == "failed" and "No space left" in job.error
    assert fake.count("create") == 1 and not job.outputs
    # (the row says failed first, and the staging folder goes right after: only while this run holds the job)
    wait_until(lambda: not (studio.settings.staging_dir / job.id).exists(), "the staging folder removed")
    assert not list(studio.settings.outputs_dir.rglob(job.id))
