"""This year's models and fields, each through the real adapter and its fake: sound (``has_audio`` in the
job's outputs, probed from the downloaded MP4), Seedance's last frame as a second output, reference
videos / audio, wan2.7's ``input.media[]``, CogVideoX-3's settings, Tencent's LastFrameUrl and FileInfos."""

from __future__ import annotations

import av
import pytest

from app.access import LOCAL
from core.errors import ValidationError
from tests.cloud.helpers import png_data_uri, run_job

S20, S20_FAST, S20_MINI, S10 = ("doubao-seedance-2-0-260128", "doubao-seedance-2-0-fast-260128",
                                "doubao-seedance-2-0-mini-260615", "doubao-seedance-1-0-pro-250528")


def created(fake, route: str = "create") -> dict:
    return next(r for r in fake.requests if fake.route(r) == route).json()


def sound_of(studio, job) -> bool:
    """Whether the stored MP4 really has an audio stream (not just what the job row says)."""
    with av.open(str(studio.settings.workspace / job.outputs[0]["file"])) as container:
        return bool(container.streams.audio)


# --- Seedance -----------------------------------------------------------------------------------
def test_seedance_2_sound_by_default_and_last_frame_as_an_image(studio_for):
    studio, fake = studio_for("ark")
    job = run_job(studio, {"engine": "ark", "prompt": "仙鹤飞过云海", "params": {
        "model": S20, "duration": -1, "ratio": "adaptive", "return_last_frame": True}})
    assert job.status == "succeeded", job.error
    body = created(fake)
    assert body["duration"] == -1 and body["return_last_frame"] is True and "generate_audio" not in body
    video, frame = job.outputs
    assert video["kind"] == "video" and video["has_audio"] is True and sound_of(studio, job)
    assert frame["kind"] == "image" and frame["meta"]["role"] == "last_frame" and frame["width"] == 64
    assert (studio.settings.workspace / frame["file"]).read_bytes()[:4] == b"\x89PNG"


def test_seedance_sound_switched_off_is_a_silent_file(studio_for):
    studio, fake = studio_for("ark")
    job = run_job(studio, {"engine": "ark", "prompt": "静默", "params": {"model": S20, "generate_audio": False}})
    assert job.status == "succeeded", job.error
    assert created(fake)["generate_audio"] is False
    assert job.outputs[0]["has_audio"] is False and not sound_of(studio, job) and len(job.outputs) == 1


def test_seedance_2_reference_images_videos_and_audio(studio_for):
    studio, fake = studio_for("ark")
    job = run_job(studio, {"engine": "ark", "prompt": "角色跳舞", "reference_images": [png_data_uri()] * 2, "params": {
        "model": S20, "reference_videos": ["https://e.test/a.mp4", "https://e.test/b.mp4"],
        "reference_audios": ["https://e.test/beat.mp3"]}})
    assert job.status == "succeeded", job.error
    items = created(fake)["content"]
    roles = [(i["type"], i.get("role")) for i in items]
    assert roles.count(("image_url", "reference_image")) == 2
    assert roles.count(("video_url", "reference_video")) == 2 and ("audio_url", "reference_audio") in roles


@pytest.mark.parametrize("params, words", [
    ({"model": S10, "duration": -1}, "-1"),
    ({"model": S20_FAST, "resolution": "1080p"}, "1080p"),
    ({"model": S20_MINI, "resolution": "1080p"}, "1080p"),
    ({"model": S10, "generate_audio": True}, "generate_audio"),
    ({"model": S10, "reference_videos": ["https://e.test/a.mp4"]}, "reference videos"),
    ({"model": S20, "duration": 16}, "duration"),
    ({"model": S20, "reference_videos": ["https://e.test/1.mp4"] * 4}, "3"),
])
def test_seedance_rules_come_from_the_table(studio_for, params, words):
    studio, fake = studio_for("ark")
    with pytest.raises(ValidationError, match=words):
        studio.service.submit({"engine": "ark", "prompt": "山", "params": params}, LOCAL)
    assert fake.count("create") == 0


def test_seedance_2_takes_nine_reference_images_and_1080p(studio_for):
    studio, fake = studio_for("ark")
    job = run_job(studio, {"engine": "ark", "prompt": "九张参考图", "reference_images": [png_data_uri()] * 9,
                           "params": {"model": S20, "resolution": "1080p", "duration": 15}})
    assert job.status == "succeeded", job.error
    assert sum(1 for i in created(fake)["content"] if i.get("role") == "reference_image") == 9


# --- DashScope ----------------------------------------------------------------------------------
def test_wan26_audio_url_and_sound(studio_for, mp4_sound_bytes):
    studio, fake = studio_for("dashscope")
    fake.video_sound = mp4_sound_bytes
    job = run_job(studio, {"engine": "dashscope", "prompt": "雨夜街头", "params": {
        "model": "wan2.6-t2v", "resolution": "1080P", "duration": 15, "audio_url": "https://e.test/rain.mp3"}})
    assert job.status == "succeeded", job.error
    body = created(fake)
    assert body["input"]["audio_url"] == "https://e.test/rain.mp3" and body["parameters"]["duration"] == 15
    assert job.outputs[0]["has_audio"] is True and sound_of(studio, job)
    silent = run_job(studio, {"engine": "dashscope", "prompt": "无声", "params": {"model": "wan2.6-t2v",
                                                                                  "audio": False}})
    assert silent.status == "succeeded" and silent.outputs[0]["has_audio"] is False


def test_wan27_i2v_sends_input_media(studio_for, mp4_sound_bytes):
    studio, fake = studio_for("dashscope")
    fake.video_sound = mp4_sound_bytes
    job = run_job(studio, {"engine": "dashscope", "prompt": "人物开口说话", "image": png_data_uri(),
                           "last_image": png_data_uri((0, 0, 90)), "params": {
                               "model": "wan2.7-i2v", "resolution": "720P",
                               "audio_url": "https://e.test/voice.wav", "first_clip_url": "https://e.test/c.mp4"}})
    assert job.status == "succeeded", job.error
    inp = created(fake)["input"]
    assert [m["type"] for m in inp["media"]] == ["first_frame", "last_frame", "driving_audio", "first_clip"]
    assert inp["media"][0]["url"].startswith("data:image/") and "img_url" not in inp and "audio_url" not in inp
    assert job.outputs[0]["has_audio"] is True


def test_wan27_r2v_reference_images_and_videos(studio_for):
    studio, fake = studio_for("dashscope")
    job = run_job(studio, {"engine": "dashscope", "prompt": "character1 在跳舞", "reference_images": [png_data_uri()],
                           "params": {"model": "wan2.7-r2v", "reference_video_urls": ["https://e.test/r.mp4"]}})
    assert job.status == "succeeded", job.error
    assert [m["type"] for m in created(fake)["input"]["media"]] == ["reference_image", "reference_video"]


@pytest.mark.parametrize("params, words", [
    ({"model": "wanx2.1-t2v-turbo", "audio_url": "https://e.test/a.mp3"}, "audio_url"),
    ({"model": "wan2.6-t2v", "resolution": "480P"}, "480P"),
    ({"model": "wan2.6-t2v", "audio_url": "ftp://e.test/a.mp3"}, "http"),
    ({"model": "wan2.6-t2v", "first_clip_url": "https://e.test/c.mp4"}, "first_clip_url"),
])
def test_dashscope_new_fields_are_checked(studio_for, params, words):
    studio, fake = studio_for("dashscope")
    with pytest.raises(ValidationError, match=words):
        studio.service.submit({"engine": "dashscope", "prompt": "山", "params": params}, LOCAL)
    assert fake.count("create") == 0


# --- Zhipu --------------------------------------------------------------------------------------
def test_cogvideox3_settings_and_sound(studio_for, mp4_sound_bytes):
    studio, fake = studio_for("zhipu")
    fake.video_sound = mp4_sound_bytes
    job = run_job(studio, {"engine": "zhipu", "prompt": "城市延时摄影", "params": {
        "model": "cogvideox-3", "quality": "quality", "with_audio": True, "size": "3840x2160", "fps": 60,
        "duration": 10}})
    assert job.status == "succeeded", job.error
    body = created(fake)
    assert (body["quality"], body["with_audio"], body["size"], body["fps"], body["duration"]) == (
        "quality", True, "3840x2160", 60, 10)
    assert job.outputs[0]["has_audio"] is True and sound_of(studio, job)
    with pytest.raises(ValidationError, match="not 8 s"):
        studio.service.submit({"engine": "zhipu", "prompt": "x", "params": {"model": "cogvideox-3", "duration": 8}},
                              LOCAL)


# --- Tencent VOD --------------------------------------------------------------------------------
def test_tencent_last_frame_url_and_audio_generation(studio_for):
    studio, fake = studio_for("tencent-vod")
    job = run_job(studio, {"engine": "tencent-vod", "prompt": "日落到夜晚", "image": png_data_uri(),
                           "last_image": "https://e.test/night.png", "params": {
                               "model": "Kling", "model_version": "O1", "audio_generation": True}})
    assert job.status == "succeeded", job.error
    body = created(fake, "CreateAigcVideoTask")
    assert body["LastFrameUrl"] == "https://e.test/night.png" and len(body["FileInfos"]) == 1
    assert body["ModelVersion"] == "O1" and body["OutputConfig"]["AudioGeneration"] == "Enabled"
    assert job.outputs[0]["has_audio"] is True and sound_of(studio, job)


def test_tencent_versions_from_the_table(studio_for):
    studio, fake = studio_for("tencent-vod")
    job = run_job(studio, {"engine": "tencent-vod", "prompt": "古寺", "params": {"model": "GV",
                                                                               "model_version": "3.1-fast"}})
    assert job.status == "succeeded", job.error
    assert created(fake, "CreateAigcVideoTask")["ModelVersion"] == "3.1-Fast"  # the vendor's spelling
    jimeng = run_job(studio, {"engine": "tencent-vod", "prompt": "水墨山水", "params": {"model": "Jimeng"}})
    assert jimeng.status == "succeeded", jimeng.error
    with pytest.raises(ValidationError, match="at most 3"):
        studio.service.submit({"engine": "tencent-vod", "prompt": "x", "reference_images": [png_data_uri()] * 4,
                               "params": {"model": "Vidu"}}, LOCAL)
