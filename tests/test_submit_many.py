"""``JobService.submit_many``: many requests in one call, all or nothing, over a studio whose lanes
are not consumed (the jobs stay queued, so what is stored and enqueued can be read back)."""

from __future__ import annotations

import pytest
import yaml

from app.access import LOCAL, Principal
from app.db import Job
from app.jobs import MAX_BATCH
from core.errors import NotFound, QuotaExceeded, ValidationError
from tests.conftest import install_weights

WAN = {"engine": "wan2.1-t2v-1.3b", "prompt": "韩立御剑",
       "params": {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}}
CLOUD = {"engine": "dashscope", "prompt": "剑仙穿过云海",
         "params": {"model": "wanx2.1-t2v-turbo", "size": "832*480", "duration": 5}}


@pytest.fixture
def stored(workspace, tiny_wan_dir, monkeypatch):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test-only-not-a-key")
    install_weights(workspace, "wan2.1-t2v-1.3b", tiny_wan_dir)
    (workspace / "users").mkdir()
    (workspace / "users" / "erin.yaml").write_text(yaml.safe_dump(
        {"quotas": {"videos_per_day": 3}, "limits": {"max_frames": 9}}), encoding="utf-8")
    studio = Studio(load_settings(workspace))  # not started: nothing runs, nothing is polled
    with db.connection_context():
        yield studio
    studio.queue.close()
    studio.database.close()


def rows() -> int:
    return Job.select().count()


def test_order_kept_rows_stored_and_every_job_enqueued(stored):
    service = stored.service
    batch = [{**(WAN if i % 2 else CLOUD), "prompt": f"第{i}幕"} for i in range(7)]
    jobs = service.submit_many(batch, LOCAL)
    assert [j.prompt for j in jobs] == [f"第{i}幕" for i in range(7)]
    assert len({j.id for j in jobs}) == 7 and rows() == 7
    for job, request in zip(jobs, batch):
        row = Job.get_by_id(job.id)
        assert (row.engine, row.status, row.user, row.source) == (request["engine"], "queued", "local", "api")
        assert row.huey_id and row.lane == ("io" if request["engine"] == "dashscope" else "gpu")
        assert isinstance(row.params["seed"], int)
    for lane in ("gpu", "io"):
        assert stored.queue.pending_job_ids(lane) == {j.id for j in jobs if j.lane == lane}
    # the messages keep the batch's order within a lane (FIFO)
    pending = [t.args[0] for t in stored.queue.hueys["io"].pending()]
    assert pending == [j.id for j in jobs if j.lane == "io"]


def test_one_bad_item_stores_nothing_and_is_named(stored):
    service = stored.service
    with pytest.raises(ValidationError) as err:
        service.submit_many([WAN, WAN, {**WAN, "engine": "nope"}, WAN], LOCAL)
    assert err.value.en.startswith("Request 3: Unknown engine 'nope'"), err.value.en
    assert err.value.zh.startswith("第 3 个请求：未知引擎“nope”"), err.value.zh
    with pytest.raises(ValidationError) as err:
        service.submit_many([WAN, "not an object"], LOCAL)
    assert err.value.en == "Request 2: The request must be a JSON object."
    with pytest.raises(ValidationError, match=r"^Request 1: params\.guidance_scale: must be a finite number"):
        service.submit_many([{**WAN, "params": {**WAN["params"], "guidance_scale": float("inf")}}], LOCAL)
    with pytest.raises(NotFound, match="^Request 2: "):  # an image of a job that does not exist
        service.submit_many([WAN, {"engine": "svd-xt", "image": "job:" + "0" * 32, "params": {}}], LOCAL)
    assert rows() == 0 and not stored.queue.pending_job_ids("gpu")


def test_empty_non_list_and_over_limit_are_refused(stored):
    service = stored.service
    with pytest.raises(ValidationError, match="empty"):
        service.submit_many([], LOCAL)
    with pytest.raises(ValidationError, match="list of requests"):
        service.submit_many(WAN, LOCAL)
    with pytest.raises(ValidationError) as err:
        service.submit_many([WAN] * (MAX_BATCH + 1), LOCAL)
    assert f"At most {MAX_BATCH} requests" in err.value.en and f"最多提交 {MAX_BATCH} 个" in err.value.zh
    assert rows() == 0


def test_a_batch_over_the_quota_stores_nothing(stored):
    service, erin = stored.service, Principal(user="erin")
    service.submit(WAN, erin)  # 1 of 3 used today
    with pytest.raises(QuotaExceeded) as err:
        service.submit_many([WAN, WAN, WAN], erin)
    assert err.value.en.startswith("Request 3: Daily quota reached: 3 of 3"), err.value.en  # 1 + this call's 2
    assert "requests 1-2 of this call count towards it; none of them was stored" in err.value.en
    assert err.value.zh.startswith("第 3 个请求：已达到每日配额") and "均未保存" in err.value.zh, err.value.zh
    assert rows() == 1
    with pytest.raises(QuotaExceeded, match="^Request 2: Videos may have at most 9 frames"):  # a limit, too
        service.submit_many([WAN, {**WAN, "params": {**WAN["params"], "num_frames": 13}}], erin)
    assert rows() == 1
    assert len(service.submit_many([WAN, WAN], erin)) == 2 and rows() == 3


def test_submit_and_rerun_still_take_the_same_path(stored):
    service = stored.service
    job = service.submit(WAN, LOCAL)
    again = service.rerun(job.id, LOCAL)
    assert again.params == job.params and again.rerun_of == job.id and rows() == 2
    assert Job.get_by_id(again.id).huey_id
