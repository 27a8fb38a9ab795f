"""DashScope Wan text-to-image through the real adapter against the loopback DashScope: the create body,
several images per task, sizes refused before anything is sent, a lost create looked up (not re-sent),
moderation, and character Design on the cloud for a creator without a GPU."""

from __future__ import annotations

import pytest
from PIL import Image

from app.access import LOCAL
from tests.cloud.fake_dashscope import FakeDashScope
from tests.cloud.fakeserver import Fault
from tests.cloud.helpers import run_job, wait_job

KEY = "sk-test-dashscope-image-0a1b2c3d4e5f6071"


@pytest.fixture
def fake(monkeypatch, mp4_bytes):
    server = FakeDashScope(KEY, mp4_bytes).start()
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", server.base_url)
    yield server
    server.stop()


def t2i(**params) -> dict:
    return {"engine": "dashscope-image", "prompt": "韩立，青衫少年修士，半身像", "negative_prompt": "模糊",
            "params": {"width": 768, "height": 1024, **params}}


def test_four_portraits_from_one_task(cloud_studio, fake):
    job = run_job(cloud_studio, t2i(num_images=4, seed=9))
    assert job.status == "succeeded", (job.error, job.message)
    create = next(r for r in fake.requests if fake.route(r) == "create")
    assert create.path == "/api/v1/services/aigc/text2image/image-synthesis"
    assert create.headers["x-dashscope-async"] == "enable"
    body = create.json()
    assert body["model"] == "wan2.2-t2i-flash"
    assert body["input"] == {"prompt": "韩立，青衫少年修士，半身像", "negative_prompt": "模糊"}
    assert body["parameters"] == {"size": "768*1024", "n": 4, "seed": 9, "prompt_extend": True, "watermark": False}
    assert [o["kind"] for o in job.outputs] == ["image"] * 4
    colours = set()
    for out in job.outputs:
        with Image.open(cloud_studio.settings.workspace / out["file"]) as im:
            assert im.size == (768, 1024)
            colours.add(im.convert("RGB").getpixel((0, 0)))
        assert out["meta"]["actual_prompt"].startswith("韩立") and out["meta"]["model"] == "wan2.2-t2i-flash"
    assert len(colours) == 4  # four different images, each downloaded once
    assert fake.count("create") == 1


@pytest.mark.parametrize("params, words", [
    ({"width": 2048, "height": 1024}, "each side 512 to 1440"),
    ({"model": "wan2.5-t2i-preview", "width": 512, "height": 512}, "pixels in all"),
    ({"num_images": 5}, "num_images"),
    ({"model": "wan9-t2i"}, "unknown model"),
])
def test_what_the_model_cannot_make_is_refused_before_sending(cloud_studio, fake, params, words):
    from core.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        cloud_studio.service.submit(t2i(**params), LOCAL)
    assert words in str(err.value) or words in err.value.en
    assert fake.count("create") == 0


def test_a_lost_create_is_found_in_the_task_list_not_sent_again(cloud_studio, fake):
    fake.inject("create", Fault(truncate=True))  # the task is made, its answer is cut off
    job = run_job(cloud_studio, t2i(num_images=2), timeout=30)
    assert job.status == "succeeded", (job.error, job.message)
    assert fake.count("create") == 1 and fake.count("list") >= 1 and len(fake.tasks) == 1 and len(job.outputs) == 2


def test_moderation_is_said_in_both_languages(cloud_studio, fake):
    job = run_job(cloud_studio, {**t2i(), "prompt": "blocked words"})
    assert job.status == "failed" and "content check" in job.error and "内容安全审核" in job.error_zh


def test_character_design_on_the_cloud(cloud_studio, fake, tmp_path):
    """No GPU: Design makes 6 candidates on DashScope (a task makes at most 4: two tasks), pick one."""
    from app.character_design import DesignService
    from profiles.store import ProjectStore

    store = ProjectStore(cloud_studio.settings.projects_dir)
    store.create("cloudy", "云上")
    store.upsert_character("cloudy", "hanli", {"name": "韩立", "prompt": "young cultivator in a green robe"})
    design = DesignService(cloud_studio.service, store)
    out = design.design("cloudy", "hanli", LOCAL, count=6, engine="dashscope-image")
    assert len(out["jobs"]) == 2
    for j in out["jobs"]:
        assert wait_job(cloud_studio, j["id"], timeout=30).status == "succeeded"
    assert sorted(b["parameters"]["n"] for b in fake.bodies) == [2, 4]  # (the two creates may arrive in either order)
    found = design.candidates("cloudy", "hanli", LOCAL)
    assert len(found["images"]) == 6
    picked = design.pick("cloudy", "hanli", found["images"][5]["ref"], LOCAL)
    assert store.get("cloudy").characters["hanli"].reference_images[0] == picked["reference"]
