"""Seed 002 (multi-provider video service): every documented create request, status, result."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.cloud.fake_dashscope import FakeDashScope
from tests.cloud.fake_zhipu import FakeZhipu

DS_KEY, ZP_KEY = "sk-fake-dashscope-0001", "fake-zhipu.0001"


def task(model, provider, **parameters):
    return {"model": model, "provider": provider, "parameters": parameters, "is_async": True}


EXAMPLES = [
    task("wanx2.1-t2v-turbo", "aliyun", prompt="一只可爱的小猫咪在草地上玩耍", negative_prompt="模糊, 扭曲, 低质量",
         duration=5, resolution="720P"),
    task("wanx2.1-t2v-plus", "aliyun", prompt="宇航员在月球上行走，高清，写实风格", negative_prompt="模糊, 低质量",
         duration=5, resolution="720P", prompt_extend=True),
    task("wanx2.1-i2v-turbo", "aliyun", prompt="使图片动起来，高清效果", img_url="https://example.com/source-image.jpg",
         duration=5, resolution="720P"),
    task("wanx2.1-kf2v-plus", "aliyun", prompt="一个女孩从森林中漫步而出，脸上洋溢着喜悦的笑容",
         first_frame_url="https://example.com/first-frame.jpg", last_frame_url="https://example.com/last-frame.jpg",
         resolution="720P", obj_or_bg=["obj", "bg"]),
    task("cogvideox-2", "zhipuai", prompt="一只狗狗在海边奔跑，阳光明媚，细节丰富，4K", quality="quality",
         size="1080x1920", fps=30),
    task("cogvideox-2", "zhipuai", prompt="让图片动起来，高品质动态效果", image_url="https://example.com/source-image.jpg",
         quality="quality", size="1080x1920", fps=30),
    task("viduq1-text", "zhipuai", prompt="比得兔开小汽车，游走在马路上，脸上的表情充满开心喜悦", style="anime",
         duration="5", size="1080x1920", movement_amplitude="auto"),
    task("vidu2-image", "zhipuai", image_url="https://example.com/source-image.jpg", prompt="增加动态效果，高质量",
         duration="4", size="1080x1920", movement_amplitude="auto"),
    task("vidu2-start-end", "zhipuai",
         image_url=["https://example.com/first-frame.jpg", "https://example.com/last-frame.jpg"],
         prompt="平滑过渡，高质量生成", duration="4", size="720x480", movement_amplitude="medium", with_audio=True),
    task("vidu2-reference", "zhipuai",
         image_url=["https://example.com/reference-image1.jpg", "https://example.com/reference-image2.jpg"],
         prompt="根据参考图像生成视频，保持角色特征", duration="4", aspect_ratio="16:9", size="720x480",
         movement_amplitude="auto", with_audio=True),
]


@pytest.fixture
def fakes(monkeypatch, mp4_bytes):
    ds, zp = FakeDashScope(DS_KEY, mp4_bytes).start(), FakeZhipu(ZP_KEY, mp4_bytes).start()
    monkeypatch.setenv("DASHSCOPE_API_KEY", DS_KEY)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", ds.base_url)
    monkeypatch.setenv("ZHIPUAI_API_KEY", ZP_KEY)
    monkeypatch.setenv("ZHIPUAI_BASE_URL", zp.base_url)
    yield ds, zp
    ds.stop()
    zp.stop()


def test_without_provider_keys_every_example_says_what_to_set(make_api):
    api = make_api()
    for example in EXAMPLES:
        r = api.client.post("/api/v1/tasks/", json=example)
        assert r.status_code == 503, r.text
        body = r.json()
        want = "DASHSCOPE_API_KEY" if example["provider"] == "aliyun" else "ZHIPUAI_API_KEY"
        assert body["success"] is False and body["results"] is None and want in body["message"]


def test_every_documented_example_is_accepted(make_api, fakes):
    api = make_api()
    for example in EXAMPLES:
        r = api.client.post("/api/v1/tasks/", json=example)
        assert r.status_code == 200, (example["model"], r.text)
        body = r.json()
        assert body["success"] is True and body["message"] == "任务创建成功"
        results = body["results"]
        assert results["status"] == "pending" and results["model"] == example["model"]
        job = api.job(results["task_id"])
        assert job.engine == {"aliyun": "dashscope", "zhipuai": "zhipu"}[example["provider"]]
        assert job.params["model"] == example["model"] and job.source == "rest:002"
    kf2v = api.job(api.client.post("/api/v1/tasks/", json=EXAMPLES[3]).json()["results"]["task_id"])
    assert [i["role"] for i in kf2v.images] == ["first_frame", "last_frame"]
    ref = api.job(api.client.post("/api/v1/tasks", json=EXAMPLES[9]).json()["results"]["task_id"])
    assert [i["role"] for i in ref.images] == ["reference", "reference"] and ref.task == "ref2v"
    assert api.client.post("/api/v1/tasks/", json=EXAMPLES[3]).json()["results"]["ignored_parameters"] == ["obj_or_bg"]


def test_result_shape_after_a_real_run(make_api, fakes):
    api = make_api(start=True)
    created = api.client.post("/api/v1/tasks/", json=EXAMPLES[1]).json()["results"]
    task_id = created["task_id"]
    deadline = time.monotonic() + 30
    while api.client.get(f"/api/v1/tasks/{task_id}/status").json()["results"]["status"] != "completed":
        assert time.monotonic() < deadline, api.job(task_id).message
        time.sleep(0.1)
    status = api.client.get(f"/api/v1/tasks/{task_id}/status").json()
    assert status["success"] is True and status["message"] == "获取任务状态成功"
    body = api.client.get(f"/api/v1/tasks/{task_id}/result").json()
    assert body["success"] is True and body["message"] == "获取任务结果成功"
    results = body["results"]
    assert set(results) == {"task_id", "status", "result", "error"} and results["error"] is None
    result = results["result"]
    assert set(result) >= {"id", "model", "created", "videos", "prompt", "actual_prompt", "resolution", "usage"}
    assert result["model"] == "wanx2.1-t2v-plus" and result["resolution"] == "720P"
    assert result["id"] == api.job(task_id).remote_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", result["created"])
    video = result["videos"][0]
    assert video["index"] == 0 and video["url"].startswith(fakes[0].url)  # the provider's own (expiring) URL
    local = Path(video["local_path"])
    assert local.is_file() and re.fullmatch(r"dashscope_\d{8}_\d{6}_0_[0-9a-f]{8}\.mp4", local.name)
    assert video["duration"] > 0 and api.client.get(video["download_url"]).status_code == 200
    assert result["prompt"] == "宇航员在月球上行走，高清，写实风格"


def test_sync_call_waits_for_the_result(make_api, fakes):
    api = make_api(start=True)
    body = api.client.post("/api/v1/tasks/", json={**EXAMPLES[0], "is_async": False}).json()
    assert body["success"] is True and body["results"]["status"] == "completed"
    assert body["results"]["result"]["videos"][0]["local_path"].endswith(".mp4")


def test_bad_requests(make_api, fakes):
    api = make_api()
    r = api.client.post("/api/v1/tasks/", json=task("x", "openai", prompt="猫"))
    assert r.status_code == 422 and "openai" in r.json()["message"]
    r = api.client.post("/api/v1/tasks/", json=task("wanx2.1-t2v-turbo", "aliyun", prompt="猫", colour="red"))
    assert r.status_code == 422 and "colour" in r.json()["message"]
    r = api.client.post("/api/v1/tasks/", json={"provider": "aliyun"})
    assert r.status_code == 422 and r.json()["success"] is False
    r = api.client.get("/api/v1/tasks/" + "f" * 32 + "/status")
    assert r.status_code == 404 and r.json()["success"] is False
    assert api.client.get("/api/v1/tasks/..%2F..%2Fx/result").status_code == 404


def test_vidu_sizes_follow_the_model(make_api, fakes):
    api = make_api()
    text = api.client.post("/api/v1/tasks/", json=EXAMPLES[6]).json()["results"]
    job = api.job(text["task_id"])
    assert (job.params["size"], job.params["aspect_ratio"]) == ("1920x1080", "9:16")
    assert set(text["adjusted_parameters"]) == {"size", "aspect_ratio"}
    image = api.job(api.client.post("/api/v1/tasks/", json=EXAMPLES[7]).json()["results"]["task_id"])
    assert image.params["size"] == "1280x720" and image.params.get("aspect_ratio") is None
