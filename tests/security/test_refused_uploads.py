"""A refused submit leaves no file behind: the images a request carries (data URIs, copies of uploads)
are written to the call's own staging folder and move into ``uploads`` only with the job's row. Before,
a batch refused by its last request (or by a quota, or an engine not available) had already written
every earlier image: a key holder could fill the disk with calls that stored nothing."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from app.access import Principal
from core.errors import AppError

I2V = {"engine": "dashscope", "prompt": "韩立御剑", "params": {"model": "wan2.2-i2v-flash"}}


def data_uri(colour: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def api(make_api, monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "test-only-not-a-key")
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", "http://127.0.0.1:9")  # never called: jobs stay queued
    return make_api(keys={"alice": False})


def kept_files(ws) -> set[str]:
    return {p.name for p in (ws / "uploads").glob("*")} | {p.name for p in (ws / "tmp").glob("submit-*")}


def test_a_batch_refused_by_its_last_request_keeps_none_of_its_images(api):
    ws, service = api.studio.settings.workspace, api.studio.service
    before = kept_files(ws)
    batch = [{**I2V, "image": data_uri((i, 40, 200))} for i in range(5)] + [{**I2V, "params": {"model": "nope"}}]
    with pytest.raises(AppError, match="6"):
        service.submit_many(batch, Principal(user="alice"))
    assert kept_files(ws) == before


def test_a_request_refused_after_its_image_was_read_keeps_nothing(api):
    ws, service = api.studio.settings.workspace, api.studio.service
    before = kept_files(ws)
    with pytest.raises(AppError):  # no weights installed: not available, found after the image was read
        service.submit({"engine": "svd-xt", "image": data_uri((9, 9, 9)), "params": {}}, Principal(user="alice"))
    assert kept_files(ws) == before


def test_a_batch_refused_by_the_quota_keeps_none_of_its_images(api):
    ws, service = api.studio.settings.workspace, api.studio.service

    def admission(**_):
        from core.errors import QuotaExceeded

        raise QuotaExceeded("Over your quota.", "超出配额。")

    before = kept_files(ws)
    service.admission = admission
    try:
        with pytest.raises(AppError, match="quota"):
            service.submit_many([{**I2V, "image": data_uri((1, 2, 3))}], Principal(user="alice"))
    finally:
        service.admission = None
    assert kept_files(ws) == before


def test_an_accepted_batch_keeps_each_image_once_under_uploads(api):
    ws, service = api.studio.settings.workspace, api.studio.service
    same = data_uri((200, 10, 10))
    jobs = service.submit_many([{**I2V, "image": same}, {**I2V, "image": same, "prompt": "第二幕"}],
                               Principal(user="alice"))
    for job in jobs:
        stored = job.images[0]
        assert set(stored) == {"role", "path"} and stored["path"].startswith("uploads/")
        assert (ws / stored["path"]).is_file()
    assert jobs[0].images == jobs[1].images
    assert not list((ws / "tmp").glob("submit-*"))
    one = service.submit({**I2V, "image": data_uri((3, 200, 3))}, Principal(user="alice"))
    assert (ws / one.images[0]["path"]).is_file()


def test_a_killed_calls_staging_folder_is_swept_once_it_is_old(api):
    import os
    import time

    from app.api.retention import RetentionSweeper

    tmp = api.studio.settings.staging_dir
    old, fresh = tmp / "submit-old", tmp / "submit-fresh"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "a.png").write_bytes(b"x")
    hours_ago = time.time() - 3 * 3600
    os.utime(old, (hours_ago, hours_ago))
    assert RetentionSweeper(api.studio.settings).sweep_staging() == 1
    assert not old.exists() and fresh.is_dir()
