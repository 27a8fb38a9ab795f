"""The official SDKs, pointed at our fakes, are understood: the fakes speak the real protocol.

Skipped when an SDK is not installed (they are dev-only: ``pip install -e .[dev]``).
"""

from __future__ import annotations

import pytest

from tests.cloud.fake_dashscope import FakeDashScope
from tests.cloud.fake_zhipu import FakeZhipu

DS_KEY = "sk-sdk-check-dashscope"
ZP_KEY = "0123456789abcdef.sdkchecksecret"


def _import(name: str):
    try:
        return __import__(name)
    except Exception as exc:  # noqa: BLE001 - a broken optional SDK install is a skip, not a failure
        pytest.skip(f"{name} SDK not importable ({type(exc).__name__}: {exc}); install the dev extra")


def test_dashscope_sdk_requests_are_accepted(mp4_bytes):
    dashscope = _import("dashscope")
    from dashscope import VideoSynthesis

    with FakeDashScope(DS_KEY, mp4_bytes) as fake:
        saved = dashscope.base_http_api_url
        dashscope.base_http_api_url = fake.base_url
        try:
            created = VideoSynthesis.async_call(model="wanx2.1-t2v-turbo", prompt="雪山", size="832*480",
                                                seed=3, api_key=DS_KEY)
            assert created.status_code == 200 and created.output.task_status == "PENDING"
            task_id = created.output.task_id
            assert VideoSynthesis.fetch(task_id, api_key=DS_KEY).output.task_status == "RUNNING"
            done = VideoSynthesis.fetch(task_id, api_key=DS_KEY)
            assert done.output.task_status == "SUCCEEDED" and done.output.video_url.startswith(fake.url)

            kf = VideoSynthesis.async_call(model="wanx2.1-kf2v-plus", prompt="日落",
                                           first_frame_url="https://example.com/a.png",
                                           last_frame_url="https://example.com/b.png", api_key=DS_KEY)
            assert kf.status_code == 200
            assert VideoSynthesis.cancel(kf.output.task_id, api_key=DS_KEY).status_code == 200
            assert fake.tasks[kf.output.task_id]["status"] == "CANCELED"

            denied = VideoSynthesis.async_call(model="wanx2.1-t2v-turbo", prompt="x", api_key="sk-wrong")
            assert denied.status_code == 401 and denied.code == "InvalidApiKey"
        finally:
            dashscope.base_http_api_url = saved
        create = next(r for r in fake.requests if fake.route(r) == "create")
        assert create.headers["x-dashscope-async"] == "enable"
        body = create.json()
        assert body["model"] == "wanx2.1-t2v-turbo" and body["parameters"]["size"] == "832*480"
        assert any(r.path.endswith("/image2video/video-synthesis") for r in fake.requests)


def test_zhipu_sdk_requests_are_accepted(mp4_bytes):
    zhipuai = _import("zhipuai")

    with FakeZhipu(ZP_KEY, mp4_bytes) as fake:
        client = zhipuai.ZhipuAI(api_key=ZP_KEY, base_url=fake.base_url, max_retries=0)
        created = client.videos.generations(model="cogvideox-3", prompt="竹林", quality="speed",
                                            size="1920x1080", fps=30, request_id="sdk-rid-1")
        assert created.task_status == "PROCESSING" and created.id
        assert client.videos.retrieve_videos_result(created.id).task_status == "PROCESSING"
        done = client.videos.retrieve_videos_result(created.id)
        assert done.task_status == "SUCCESS" and done.video_result[0].url.startswith(fake.url)

        fake.dedupe_request_id = True  # the real API does not promise this; the error shape is still checked
        with pytest.raises(zhipuai.APIRequestFailedError, match="1231"):
            client.videos.generations(model="cogvideox-3", prompt="竹林", request_id="sdk-rid-1")
        with pytest.raises(zhipuai.APIAuthenticationError):
            zhipuai.ZhipuAI(api_key="x.y", base_url=fake.base_url, max_retries=0).videos.generations(
                model="cogvideox-3", prompt="x")
        pair = client.videos.generations(model="vidu2-start-end", prompt="过渡",
                                         image_url=["https://example.com/a.png", "https://example.com/b.png"])
        assert pair.id
        assert fake.created == 2
