"""The usage ledger: real cloud jobs through the four loopback vendors, summed per day and provider.

The expected figures are read from the vendors' own answers as the fakes sent them (not from
the job rows), so a mapping that drops or misreads a field fails here.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from app.db import Job
from core.errors import ValidationError
from app.ui.usage_view import usage_markdown
from app.usage import job_usage, ledger
from tests.cloud.conftest import cloud_studio, fast_cloud, mp4_bytes  # noqa: F401  (fixtures)
from tests.cloud.fake_ark import API_KEY as ARK_KEY
from tests.cloud.fake_ark import FakeArk
from tests.cloud.fake_dashscope import FakeDashScope
from tests.cloud.fake_tencent import SECRET_ID, SECRET_KEY, SUB_APP_ID, FakeTencent
from tests.cloud.fake_zhipu import FakeZhipu
from tests.cloud.helpers import wait_job
from app.access import LOCAL, Principal  # noqa: F401

DASH_KEY = "sk-usage-dashscope-0a1b2c3d4e5f"
ZHIPU_KEY = "usage0zhipu1key.SecretPart77"


class Recording:
    """Keeps every answer a fake sent: (request, route, JSON body)."""

    def handle(self, req, route):
        reply = super().handle(req, route)
        self.answers.append((req, route, reply.body))
        return reply


class Dash(Recording, FakeDashScope):
    answers: list


class Tencent(Recording, FakeTencent):
    answers: list


class Ark(Recording, FakeArk):
    answers: list


class Zhipu(Recording, FakeZhipu):
    answers: list


@pytest.fixture
def vendors(monkeypatch, mp4_bytes):  # noqa: F811
    fakes = {"dashscope": Dash(DASH_KEY, mp4_bytes), "tencent-vod": Tencent(), "ark": Ark(),
             "zhipu": Zhipu(ZHIPU_KEY, mp4_bytes)}
    for fake in fakes.values():
        fake.answers = []
        fake.start()
    env = {"DASHSCOPE_API_KEY": DASH_KEY, "DASHSCOPE_HTTP_BASE_URL": fakes["dashscope"].base_url,
           "TENCENTCLOUD_SECRET_ID": SECRET_ID, "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
           "TENCENTCLOUD_VOD_SUBAPPID": str(SUB_APP_ID), "TENCENTCLOUD_VOD_ENDPOINT": fakes["tencent-vod"].endpoint,
           "ARK_API_KEY": ARK_KEY, "ARK_BASE_URL": fakes["ark"].base,
           "ZHIPUAI_API_KEY": ZHIPU_KEY, "ZHIPUAI_BASE_URL": fakes["zhipu"].base_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield fakes
    for fake in fakes.values():
        fake.stop()


REQUESTS = [
    {"engine": "dashscope", "prompt": "白鹤", "params": {"model": "wanx2.1-t2v-turbo", "duration": 5}},
    {"engine": "dashscope", "prompt": "海浪", "params": {"model": "wan2.5-t2v-preview", "resolution": "720P",
                                                         "duration": 10}},
    {"engine": "tencent-vod", "prompt": "剑仙御剑",
     "params": {"model": "Hailuo", "model_version": "02", "duration": 10}},
    {"engine": "tencent-vod", "prompt": "山门", "params": {"model": "Hailuo"}},
    {"engine": "ark", "prompt": "云海 --duration 8", "params": {"model": "doubao-seedance-1-0-pro-250528"}},
    {"engine": "ark", "prompt": "仙鹤", "params": {"model": "doubao-seedance-1-0-pro-250528"}},
    {"engine": "zhipu", "prompt": "竹林熊猫", "params": {"model": "cogvideox-3", "duration": 10}},
    {"engine": "dashscope", "prompt": "blocked 内容", "params": {"model": "wanx2.1-t2v-turbo"}},  # refused: no usage
]


def reported(fakes) -> dict[str, dict]:
    """Per provider, what the vendors' final answers said: {seconds, tokens, count, raw}."""
    per_task: dict[tuple[str, str], dict] = {}
    for engine, fake in fakes.items():
        for req, route, body in fake.answers:
            if not isinstance(body, dict):
                continue
            if engine == "dashscope" and route == "poll" and body["output"]["task_status"] == "SUCCEEDED":
                u = body["usage"]
                per_task[engine, body["output"]["task_id"]] = {
                    "seconds": u["video_duration"], "tokens": 0, "count": u["video_count"],
                    "raw": {"video_duration": u["video_duration"], "video_count": u["video_count"]}}
            elif engine == "tencent-vod" and route == "DescribeTaskDetail" and body["Response"]["Status"] == "FINISH":
                task = body["Response"]["AigcVideoTask"]
                out = task["Output"]
                per_task[engine, task["TaskId"]] = {"seconds": out["Usage"]["OutputSeconds"], "tokens": 0,
                                                    "count": len(out["FileInfos"]), "raw": dict(out["Usage"])}
            elif engine == "ark" and route == "get" and body["status"] == "succeeded":
                per_task[engine, body["id"]] = {"seconds": body["duration"], "tokens": body["usage"]["total_tokens"],
                                                "count": 1, "raw": dict(body["usage"])}
            elif engine == "zhipu" and route == "poll" and body["task_status"] == "SUCCESS":
                per_task[engine, req.path] = {"seconds": 0, "tokens": 0, "count": len(body["video_result"]),
                                              "raw": {}}
    sums: dict[str, dict] = {}
    for (engine, _), used in per_task.items():
        s = sums.setdefault(engine, {"jobs": 0, "seconds": 0, "tokens": 0, "count": 0, "raw": defaultdict(int)})
        s["jobs"] += 1
        for key in ("seconds", "tokens", "count"):
            s[key] += used[key]
        for key, value in used["raw"].items():
            s["raw"][key] += value
    return {e: {**s, "raw": dict(s["raw"])} for e, s in sums.items()}


def run_all(studio, requests):
    jobs = [studio.service.submit(r, LOCAL) if "blocked" not in r["prompt"] else None for r in requests]
    blocked = [r for r in requests if "blocked" in r["prompt"]]
    finished = [wait_job(studio, j.id, timeout=30) for j in jobs if j is not None]
    failed = [wait_job(studio, studio.service.submit(r, LOCAL).id, timeout=30) for r in blocked]
    return finished, failed


def test_ledger_sums_what_the_vendors_reported(cloud_studio, vendors):  # noqa: F811
    finished, failed = run_all(cloud_studio, REQUESTS)
    assert all(j.status == "succeeded" for j in finished), [(j.engine, j.error) for j in finished]
    assert [j.status for j in failed] == ["failed"]
    expected = reported(vendors)
    assert set(expected) == {"dashscope", "tencent-vod", "ark", "zhipu"}
    assert expected["dashscope"]["seconds"] == 15 and expected["ark"]["tokens"] == 2 * 108900
    assert expected["tencent-vod"]["seconds"] == 16 and expected["ark"]["seconds"] == 13

    data = ledger({})
    today = time.strftime("%Y-%m-%d")
    assert data["until"] == today and data["days"] == 30
    rows = {r["engine"]: r for r in data["rows"]}
    assert {r["day"] for r in data["rows"]} == {today}
    assert set(rows) == set(expected)
    for engine, want in expected.items():
        got = rows[engine]
        assert (got["jobs"], got["seconds"], got["tokens"], got["count"]) == \
            (want["jobs"], want["seconds"], want["tokens"], want["count"]), engine
        assert got["raw"] == want["raw"], engine
    assert [t["engine"] for t in data["totals"]] == sorted(expected)
    assert {t["engine"]: t["seconds"] for t in data["totals"]} == {e: w["seconds"] for e, w in expected.items()}

    # one provider only; and a job that finished three days ago lands on its own day
    only = ledger({"engine": "ark"})
    assert [r["engine"] for r in only["rows"]] == ["ark"]
    ark_job = next(j for j in finished if j.engine == "ark")
    Job.update(finished_at=time.time() - 3 * 86400).where(Job.id == ark_job.id).execute()
    recent = {r["engine"]: r for r in ledger({"days": 2})["rows"]}
    assert recent["ark"]["jobs"] == 1 and recent["ark"]["tokens"] == 108900
    week = ledger({"days": 7, "engine": ["ark", "zhipu"]})
    old_day = time.strftime("%Y-%m-%d", time.localtime(time.time() - 3 * 86400))
    assert [(r["day"], r["engine"]) for r in week["rows"]] == [(today, "ark"), (today, "zhipu"), (old_day, "ark")]
    assert {t["engine"]: t["jobs"] for t in week["totals"]} == {"ark": 2, "zhipu": 1}

    # a non-admin API key's caller sees only its own jobs
    zhipu_job = next(j for j in finished if j.engine == "zhipu")
    Job.update(user="alice").where(Job.id == zhipu_job.id).execute()
    assert [(r["engine"], r["jobs"]) for r in ledger({}, user="alice")["rows"]] == [("zhipu", 1)]
    assert ledger({}, user="bob")["rows"] == []

    table = usage_markdown(week, "en")
    assert f"| {old_day} | 8 s · 108,900 tokens · 1 video | — |" in table, table
    assert "**Total**" in table and "`ark`" in table and "`zhipu`" in table


@pytest.mark.parametrize("bad", [{"day": 3}, {"days": 0}, {"days": "many"}, {"engine": 5}, {"days": 100000}])
def test_bad_filters_say_what_to_use(bad):
    with pytest.raises(ValidationError) as err:
        ledger(bad)
    assert err.value.zh and ("days" in err.value.en or "engine" in err.value.en)


def test_each_engine_usage_is_read_from_its_own_answer():
    """The engines' own answer parsers feed the mapping (no studio: the vendors' JSON as given)."""
    from engines.cloud import ark, dashscope, tencent_vod, zhipu

    ds = dashscope.task_state({"output": {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "http://x/v.mp4"},
                               "usage": {"video_duration": 10, "video_count": 1, "video_ratio": "1280*720"}})
    assert job_usage("dashscope", ds.info) == {"seconds": 10, "tokens": 0, "count": 1,
                                               "raw": {"video_duration": 10, "video_count": 1}}
    tc = tencent_vod.task_state({"Status": "FINISH", "AigcVideoTask": {
        "ErrCode": 0, "Output": {"FileInfos": [{"FileUrl": "http://x/a.mp4"}, {"FileUrl": "http://x/b.mp4"}],
                                 "Usage": {"OutputSeconds": 12}}}})
    assert job_usage("tencent-vod", tc.info) == {"seconds": 12, "tokens": 0, "count": 2, "raw": {"OutputSeconds": 12}}
    ak = ark.task_state({"id": "cgt-1", "status": "succeeded", "duration": -1,
                         "content": {"video_url": "http://x/v.mp4"},
                         "usage": {"completion_tokens": 246840, "total_tokens": 246840}})
    assert job_usage("ark", ak.info) == {"seconds": 0, "tokens": 246840, "count": 1,
                                         "raw": {"completion_tokens": 246840, "total_tokens": 246840}}
    zp = zhipu.task_state({"task_status": "SUCCESS", "video_result": [{"url": "http://x/v.mp4"}]})
    outputs = [{"kind": "video"}]
    assert job_usage("zhipu", zp.info, outputs) == {"seconds": 0, "tokens": 0, "count": 1, "raw": {}}
    # an engine with no mapping counts its delivered videos
    assert job_usage("future-vendor", {}, [{"kind": "video"}, {"kind": "image"}])["count"] == 1


def test_table_reads_per_day_by_provider_in_both_languages():
    data = {"since": "2026-11-01", "until": "2026-11-30", "days": 30,
            "rows": [{"day": "2026-11-30", "engine": "dashscope", "jobs": 2, "seconds": 15, "tokens": 0, "count": 2,
                      "raw": {}},
                     {"day": "2026-11-29", "engine": "ark", "jobs": 1, "seconds": 0, "tokens": 108900, "count": 1,
                      "raw": {}}],
            "totals": [{"engine": "ark", "jobs": 1, "seconds": 0, "tokens": 108900, "count": 1, "raw": {}},
                       {"engine": "dashscope", "jobs": 2, "seconds": 15, "tokens": 0, "count": 2, "raw": {}}]}
    en = usage_markdown(data, "en").splitlines()
    assert en[2] == "| Day | `ark` | `dashscope` |"
    assert en[4] == "| 2026-11-30 | — | 15 s · 2 videos |"
    assert en[5] == "| 2026-11-29 | 108,900 tokens · 1 video | — |"
    assert en[6] == "| **Total** | **108,900 tokens · 1 video** | **15 s · 2 videos** |"
    zh = usage_markdown(data, "zh")
    assert "| 日期 |" in zh and "15 秒 · 2 个视频" in zh and "**合计**" in zh
    assert "no finished cloud jobs" in usage_markdown({**data, "rows": [], "totals": []}, "en")
