"""Quotas cannot be dodged: retry counts again, and every surface bills the caller."""

from __future__ import annotations

import pytest

from app.access import Principal
from core.errors import QuotaExceeded

WAN = {"engine": "wan2.1-t2v-1.3b", "prompt": "韩立御剑",
       "params": {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}}


def test_cancel_then_retry_passes_the_quota_check(make_api):
    api = make_api(rest={"auth": "required"}, users={"erin": {"quotas": {"videos_per_day": 2}}}, start=False)
    service, erin = api.studio.service, Principal(user="erin")
    first = service.submit(WAN, erin)
    service.submit(WAN, erin)
    with pytest.raises(QuotaExceeded):
        service.submit(WAN, erin)
    service.cancel(first.id, erin)  # cancelled before it started: no longer counted
    service.submit(WAN, erin)
    with pytest.raises(QuotaExceeded):
        service.retry(first.id, erin)  # would be a fifth video on a quota of two
    assert api.job(first.id).status == "cancelled"


def test_rerun_of_someone_elses_job_is_refused_and_never_billed_to_them(make_api):
    api = make_api(rest={"auth": "required"}, start=False)
    service = api.studio.service
    job = service.submit(WAN, Principal(user="alice"))
    from core.errors import NotFound

    with pytest.raises(NotFound):
        service.rerun(job.id, Principal(user="bob"))
    again = service.rerun(job.id, Principal(user="alice"))
    assert again.user == "alice" and again.rerun_of == job.id
