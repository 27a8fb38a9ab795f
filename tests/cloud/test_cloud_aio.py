"""Cloud polls on the event loop (engines/cloud/aio.py): a vendor slow to answer holds no io worker."""

from __future__ import annotations

import threading

from app.access import LOCAL
from tests.cloud.helpers import wait_job

JOBS = 6


def test_polls_of_many_jobs_are_in_flight_at_once_with_one_io_worker(studio_for):
    # one io worker: if a poll held it, the second job's poll could not start until the first was
    # answered, and the vendor's gate (answer only when JOBS polls are in) would never open
    studio, fake = studio_for("dashscope", config={"queue": {"io_workers": 1}})
    fake.gates["poll"] = threading.Barrier(JOBS)
    ids = [studio.service.submit({"engine": "dashscope", "prompt": f"第{i}个", "params": {"model": "wanx2.1-t2v-turbo"}},
                                 LOCAL).id for i in range(JOBS)]
    jobs = [wait_job(studio, job_id, timeout=60) for job_id in ids]
    assert all(job.status == "succeeded" for job in jobs), [job.error for job in jobs]
    assert fake.max_in_flight["poll"] >= JOBS
    assert fake.count("create") == JOBS  # still exactly one create per job


def test_sync_polls_remain_available(studio_for):
    studio, fake = studio_for("dashscope", config={"queue": {"async_cloud": False}})
    job = wait_job(studio, studio.service.submit({"engine": "dashscope", "prompt": "同步",
                                                  "params": {"model": "wanx2.1-t2v-turbo"}}, LOCAL).id)
    assert job.status == "succeeded", job.error
    assert fake.count("poll") >= 1
