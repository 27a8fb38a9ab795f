"""Estimates before spending: cloud prices from the vendor's price file, local time from history."""

from __future__ import annotations

import pytest
import yaml


def test_every_price_has_a_date_and_a_source():
    from app.estimate import price_table

    table = price_table("dashscope")
    assert table["currency"] == "CNY" and table["models"]
    for model, row in table["models"].items():
        assert row["checked"] and str(row["source"]).startswith("http"), model
        assert all(v > 0 for v in row["per_second"].values()) and row["default_resolution"] in row["per_second"]


def test_cloud_cost_follows_model_resolution_and_seconds():
    from app.estimate import cost, estimate
    from engines.cloud.dashscope import DashScopeEngine

    assert cost(DashScopeEngine, {"model": "wan2.2-t2v-plus", "resolution": "1080P", "duration": 5}) == 3.5
    assert cost(DashScopeEngine, {"model": "wan2.2-t2v-plus", "resolution": "480P", "duration": 10}) == 1.4
    assert cost(DashScopeEngine, {"model": "wan2.2-t2v-plus", "resolution": "720P"}) is None  # no such tier
    assert estimate(DashScopeEngine, {"model": "wan2.5-t2v-preview", "resolution": "720P", "duration": 10},
                    "zh")["text"] == "约 ¥6.00"


def test_local_time_is_the_median_of_this_machines_runs_at_the_same_size(tmp_path):
    from app.db import Job, open_db
    from app.estimate import estimate
    from engines.local.wan_t2v import WanT2VEngine

    database = open_db(tmp_path / "jobs.db")
    with database.connection_context():
        first = estimate(WanT2VEngine, {"width": 32, "height": 32, "num_frames": 9}, "en")
        assert first["seconds"] is None and first["text"].startswith("first run")
        for n, took in enumerate((10.0, 30.0, 20.0, 500.0)):
            size = {"width": 32, "height": 32, "num_frames": 9} if took < 100 else {"width": 64, "height": 64,
                                                                                    "num_frames": 9}
            Job.create(id=f"j{n}", engine=WanT2VEngine.id, kind="local", lane="gpu", status="succeeded",
                       params=size, started_at=1000.0, finished_at=1000.0 + took)
        got = estimate(WanT2VEngine, {"width": 32, "height": 32, "num_frames": 9}, "zh")
    assert got["seconds"] == 20.0 and "20 秒" in got["text"]
