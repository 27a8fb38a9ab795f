"""The job-service contract, one suite run on both backends: embedded (SQLite + SqliteHuey) and team
(Postgres + RedisHuey, the studio serving every lane itself with its fleet row, router and lease
monitor). Same checks, same code above the factory in app/backends.py."""

from __future__ import annotations

import time

import pytest

from app.db import Job
from core.errors import Conflict, NotAvailable, ValidationError
from tests.conftest import install_weights, wait_for
from tests.team.conftest import TINY, WAN, team_config
from app.access import LOCAL, Principal  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres+redis"])
def studio(request, workspace, tiny_wan_dir):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    install_weights(workspace, WAN, tiny_wan_dir)
    overrides = {}
    if request.param != "sqlite":
        database_url, queue_url = request.getfixturevalue("team_urls")
        (workspace / "config.yaml").write_text(team_config(studio_lanes=["gpu", "io"]), encoding="utf-8")
        overrides = {"database_url": database_url, "queue_url": queue_url}
    st = Studio(load_settings(workspace, **overrides))
    st.start()
    with db.connection_context():
        yield st
    st.stop()


def finished(service, job_id, timeout=60.0):
    return wait_for(lambda: (j := service.get(job_id, LOCAL)).status in ("succeeded", "failed", "cancelled") and j,
                    timeout=timeout)


def test_backend_is_the_one_configured(studio):
    from app.db import db

    team = studio.settings.database_url is not None
    assert type(db.obj).__name__ == ("TeamPostgresDatabase" if team else "SqliteDatabase")
    assert type(studio.queue.hueys["gpu"]).__name__ == ("RedisHuey" if team else "LaneHuey")
    assert (studio.team is not None) == team


def test_submit_runs_to_success_with_a_fenced_lease(studio):
    job = studio.service.submit({"engine": WAN, "prompt": "石头村", "params": TINY}, LOCAL)
    row = Job.get_by_id(job.id)
    assert isinstance(row.params["seed"], int) and row.params["guidance_scale"] == 5.0
    done = finished(studio.service, job.id)
    assert done.status == "succeeded" and done.attempts == 1 and done.fence == 1
    assert done.lease_owner == studio.runner.owner
    assert (studio.settings.workspace / done.outputs[0]["file"]).stat().st_size > 0
    assert 0 <= done.started_at - done.created_at < 5 and done.finished_at >= done.started_at


@pytest.mark.parametrize("request_, needle", [
    ("not a dict", "JSON object"),
    ({"prompt": "x"}, "engine: required"),
    ({"engine": WAN}, "prompt"),
    ({"engine": WAN, "prompt": "x", "params": {"width": 17}}, "multiple of 16"),
    ({"engine": WAN, "prompt": "x", "params": {"num_inference_steps": 0}}, "num_inference_steps"),
    ({"engine": WAN, "prompt": "x", "image": "https://example.com/a.png"}, "cannot do i2v"),
    ({"engine": WAN, "prompt": "x" * 6000}, "prompt"),
])
def test_bad_requests_are_refused_before_anything_is_stored(studio, request_, needle):
    before = Job.select().count()
    with pytest.raises(ValidationError) as err:
        studio.service.submit(request_, LOCAL)
    assert needle in err.value.en and err.value.zh
    assert Job.select().count() == before


def test_cancel_queued_retry_and_rerun(studio):
    studio.queue.stop()
    job = studio.service.submit({"engine": WAN, "prompt": "排队", "params": TINY}, LOCAL)
    assert studio.service.cancel(job.id, LOCAL).status == "cancelled"
    assert studio.service.cancel(job.id, LOCAL).status == "cancelled"  # idempotent
    still_queued = studio.service.submit({"engine": WAN, "prompt": "q", "params": TINY}, LOCAL)
    with pytest.raises(Conflict):
        studio.service.retry(still_queued.id, LOCAL)
    studio.queue.start()
    retried = studio.service.retry(job.id, LOCAL)
    assert retried.id == job.id and retried.status == "queued"
    done = finished(studio.service, job.id)
    assert done.status == "succeeded"
    with pytest.raises(Conflict):
        studio.service.cancel(job.id, LOCAL)
    new = studio.service.rerun(job.id, LOCAL)
    assert new.id != job.id and new.params == done.params and new.rerun_of == job.id
    assert finished(studio.service, still_queued.id).status == "succeeded"


def test_list_filters(studio):
    studio.queue.stop()
    a = studio.service.submit({"engine": WAN, "prompt": "a", "params": TINY, "project": "hanli"}, LOCAL)
    studio.service.submit({"engine": WAN, "prompt": "b", "params": TINY}, LOCAL)
    assert [j.id for j in studio.service.list({"project": "hanli"}, LOCAL)] == [a.id]
    assert len(studio.service.list({"status": ["queued"], "limit": 1}, LOCAL)) == 1
    with pytest.raises(ValidationError, match="Unknown filter"):
        studio.service.list({"colour": "red"}, LOCAL)


def test_missing_weights_make_the_engine_unavailable(studio):
    import shutil

    shutil.rmtree(studio.settings.models_dir / WAN)
    if studio.team:
        studio.team.member.refresh_engines()
        studio.team.member.beat()  # the studio itself no longer offers it: nobody does
        time.sleep(2.1)  # the fleet answer is cached for 2 s
    info = {e["id"]: e for e in studio.service.engines_info()}[WAN]
    assert info["available"] is False and "model_index.json" in info["reason"]
    assert str(studio.settings.models_dir / WAN) in info["reason"]
    assert str(studio.settings.models_dir / WAN) in info["reason_zh"] and "找不到权重" in info["reason_zh"]
    with pytest.raises(NotAvailable) as err:
        studio.service.submit({"engine": WAN, "prompt": "x", "params": TINY}, LOCAL)
    assert "找不到权重" in err.value.zh and "Weights not found" not in err.value.zh


def test_reconcile_requeues_interrupted_runs_within_bounds(studio):
    studio.queue.stop()
    a = studio.service.submit({"engine": WAN, "prompt": "a", "params": TINY}, LOCAL)
    b = studio.service.submit({"engine": WAN, "prompt": "b", "params": TINY}, LOCAL)
    Job.update(status="running", attempts=1).where(Job.id == a.id).execute()
    Job.update(status="running", attempts=studio.settings.queue.max_attempts).where(Job.id == b.id).execute()
    counts = studio.runner.reconcile()
    assert counts["requeued"] == 1 and counts["failed"] == 1
    failed = studio.service.get(b.id, LOCAL)
    assert failed.error.startswith("Interrupted") and failed.error_zh
    studio.queue.start()
    assert finished(studio.service, a.id).status == "succeeded"


def test_a_run_that_lost_its_fence_cannot_publish_or_fail_the_job(studio, tmp_path):
    studio.queue.stop()
    job = studio.service.submit({"engine": WAN, "prompt": "fenced", "params": TINY}, LOCAL)
    assert studio.runner.claim(job)
    stale = Job.get_by_id(job.id)  # what the first run holds (fence 1)
    Job.update(status="queued", fence=Job.fence + 1).where(Job.id == job.id).execute()  # taken over
    assert studio.runner.claim(Job.get_by_id(job.id))  # the second run: fence 3
    work = tmp_path / "stale-run"
    work.mkdir()
    (work / "x.mp4").write_bytes(b"stale")
    final = studio.settings.outputs_dir / "stale" / job.id
    assert studio.runner.publish(stale, stale.fence, work, final, {"status": "succeeded"}) is False
    assert not final.exists() and Job.get_by_id(job.id).status == "running"
    studio.runner.fail(stale, ValidationError("stale failure"))
    row = Job.get_by_id(job.id)
    assert row.status == "running" and row.error is None and row.fence == 3
