"""Episodes end to end on tiny pipelines and the loopback DashScope: render, reuse, re-render."""

from __future__ import annotations

import json

import pytest

from app.db import Job
from app.episodes import EpisodeService, render_video_request
from core.errors import NotAvailable, ProfileError, ValidationError
from core.media import probe
from tests.conftest import wait_for
from tests.projects.conftest import PROJECT_YAML, SCENES_YAML, write_project
from app.access import LOCAL, Principal  # noqa: F401

TERMINAL = ("succeeded", "failed", "cancelled")


def finished(studio, job_id, timeout=150.0):
    return wait_for(lambda: (j := studio.service.get(job_id, LOCAL)).status in TERMINAL and j, timeout=timeout)


def children(job_id):
    return {c.id: c for c in Job.select().where(Job.parent == job_id)}


def test_three_scenes_render_then_one_edited_scene_renders_again(project_studio, fake_dashscope):
    st = project_studio
    ws = st.settings.workspace
    write_project(st.settings.projects_dir)
    episodes = EpisodeService(st.service)
    plan = episodes.plan("test-ep")
    assert [(s.scene, s.task, [x.engine for x in s.steps]) for s in plan.scenes] == [
        ("s1-sky", "t2v", ["wan2.1-t2v-1.3b"]), ("s2-hanli", "i2v", ["sdxl-instantid", "svd-xt"]),
        ("s3-cloud", "t2v", ["dashscope"])]
    assert plan.scenes[0].steps[0].request["params"]["num_frames"] == 5  # 0.5 s x 8 fps -> 4, snapped to 4k+1

    parent = finished(st, episodes.render("test-ep", LOCAL).id)
    assert parent.status == "succeeded", (parent.error, parent.message)
    kids = children(parent.id)
    assert sorted(k.engine for k in kids.values()) == ["dashscope", "sdxl-instantid", "stitch", "svd-xt",
                                                       "wan2.1-t2v-1.3b"]
    assert all(k.status == "succeeded" and k.project == "test-ep" for k in kids.values())
    assert {j.id for j in st.service.list({"parent": parent.id}, LOCAL)} == set(kids)  # the Queue's tree

    # the episode: every scene at its own duration, at the project's fps and size
    render = ws / parent.outputs[0]["file"]
    assert render == st.settings.projects_dir / "test-ep" / "renders" / "episode_v1.mp4"
    info = probe(render)
    assert (info["codec"], info["pix_fmt"], info["width"], info["height"], info["fps"]) == ("h264", "yuv420p", 64, 48, 8)
    assert info["frames"] == 4 + 6 + 8 == round((0.5 + 0.75 + 1.0) * 8)
    assert info["duration"] == pytest.approx(2.25)

    # the sidecar names every scene's jobs, engines, seeds and parameters
    side = json.loads(render.with_suffix(".json").read_text(encoding="utf-8"))
    assert side["frames"] == 18 and side["duration"] == pytest.approx(2.25) and side["episode_task_id"] == parent.id
    assert [s["scene"] for s in side["scenes"]] == ["s1-sky", "s2-hanli", "s3-cloud"]
    for scene in side["scenes"]:
        for step in scene["steps"]:
            job = kids[step["task_id"]]
            assert step["engine"] == job.engine and step["params"] == job.params and step["reused"] is False
            assert step["seed"] == job.params["seed"] == scene["seed"] and len(step["input_hash"]) == 64
            assert step["output"] == job.outputs[0]["file"] and (ws / step["output"]).is_file()
    still_step, clip_step = side["scenes"][1]["steps"]
    still, clip = kids[still_step["task_id"]], kids[clip_step["task_id"]]
    assert still.images[0]["role"] == "reference" and still.params["identity_strength"] == 0.9
    assert clip.images[0] == {"role": "first_frame", "path": still.outputs[0]["file"]}  # i2v from the still
    assert fake_dashscope.count("create") == 1

    # edit one scene's prompt: only that scene runs again, the rest is reused; v1 is kept
    v1 = render.read_bytes()
    episodes.store.upsert_scene("test-ep", {"id": "s1-sky", "prompt": "immortal realm sky at night"})
    second = finished(st, episodes.render("test-ep", LOCAL).id)
    assert second.status == "succeeded", second.error
    new = children(second.id)
    assert sorted(k.engine for k in new.values()) == ["stitch", "wan2.1-t2v-1.3b"]
    status = episodes.episode_status(second.id, LOCAL)
    reused = {(s["scene"], st_["step"]): (st_["reused"], st_["task_id"]) for s in status["scenes"] for st_ in s["steps"]}
    assert reused[("s1-sky", "clip")][0] is False and reused[("s1-sky", "clip")][1] in new
    for key in (("s2-hanli", "still"), ("s2-hanli", "clip"), ("s3-cloud", "clip")):
        assert reused[key] == (True, next(s["task_id"] for sc in side["scenes"] if sc["scene"] == key[0]
                                          for s in sc["steps"] if s["step"] == key[1]))
    assert fake_dashscope.count("create") == 1
    assert render.read_bytes() == v1 and (render.parent / "episode_v2.mp4").is_file()
    assert probe(render.parent / "episode_v2.mp4")["frames"] == 18

    # nothing changed: only the stitch runs, into v3
    third = finished(st, episodes.render("test-ep", LOCAL, name="final").id)
    assert [k.engine for k in children(third.id).values()] == ["stitch"]
    assert third.outputs[0]["file"].endswith("renders/final_v1.mp4")


def test_render_refuses_up_front_naming_engine_and_fix(workspace, monkeypatch):
    from app.db import db
    from app.settings import load_settings
    from app.studio import Studio

    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    st = Studio(load_settings(workspace))
    st.start()
    try:
        with db.connection_context():
            write_project(st.settings.projects_dir, scenes=SCENES_YAML.replace("engine: dashscope", "engine: zhipu"))
            episodes = EpisodeService(st.service)
            before = Job.select().count()
            with pytest.raises(NotAvailable) as err:  # no weights in this workspace
                episodes.render("test-ep", LOCAL, scenes=["s1-sky"])
            assert "wan2.1-t2v-1.3b" in err.value.en and "t2v_engine" in err.value.en and "Weights" in err.value.en
            with pytest.raises(NotAvailable) as err:
                episodes.render("test-ep", LOCAL, scenes=["s3-cloud"])
            assert "zhipu" in err.value.en and "ZHIPUAI_API_KEY" in err.value.en and "scenes[2].engine" in err.value.en
            episodes.store.upsert_scene("test-ep", {"id": "s3-cloud", "engine": "no-such-engine"})
            with pytest.raises(ProfileError, match=r"scenes\.yaml → scenes\[2\]\.engine: unknown engine"):
                episodes.render("test-ep", LOCAL, scenes=["s3-cloud"])
            episodes.store.upsert_scene("test-ep", {"id": "s3-cloud", "engine": "svd-xt"})
            with pytest.raises(ValidationError, match="svd-xt cannot make this clip"):
                episodes.render("test-ep", LOCAL, scenes=["s3-cloud"])
            episodes.store.upsert_scene("test-ep", {"id": "s3-cloud", "keyframe": "keys/missing.png"})
            with pytest.raises(ProfileError, match="keyframe: assets/keys/missing.png does not exist"):
                episodes.render("test-ep", LOCAL, scenes=["s3-cloud"])
            with pytest.raises(ValidationError, match="episode name"):
                episodes.render("test-ep", LOCAL, name="../x")
            assert Job.select().count() == before  # nothing was queued
    finally:
        st.stop()


def test_seed000_video_request_becomes_an_episode(project_studio, fake_dashscope):
    st = project_studio
    episodes = EpisodeService(st.service)
    body = {"scenes": [{"id": 0, "prompt": "xianxia fantasy, immortal realm sky, golden scroll", "duration": 1.0},
                       {"id": 1, "prompt": "Han Li lying on sand, calm expression", "duration": 0.5, "seed": 5}],
            "video_config": {"fps": 8, "resolution": "64x48", "upscale": True}}
    parent = render_video_request(episodes, body, LOCAL, engine="dashscope")
    assert parent.kind == "episode" and parent.source == "rest:000" and parent.project.startswith("api-")
    done = finished(st, parent.id)
    assert done.status == "succeeded", done.error
    info = probe(st.settings.workspace / done.outputs[0]["file"])
    assert (info["width"], info["height"], info["frames"]) == (128, 96, 12)  # upscaled 2x; 1.5 s at 8 fps
    side = json.loads((st.settings.workspace / done.info["render"]["sidecar"]).read_text(encoding="utf-8"))
    assert [s["scene"] for s in side["scenes"]] == ["0", "1"] and side["scenes"][1]["seed"] == 5
    assert {b["input"]["prompt"] for b in fake_dashscope.bodies} == {body["scenes"][0]["prompt"],
                                                                      body["scenes"][1]["prompt"]}
    with pytest.raises(ProfileError, match="duration"):
        render_video_request(episodes, {"scenes": [{"id": 0, "prompt": "x", "duration": 999}]}, LOCAL, engine="dashscope")
    assert len(list(st.settings.projects_dir.glob("api-*"))) == 1  # the refused body left nothing behind


TWO_SCENES = """\
scenes:
  - {id: slow, prompt: a long pan over mountains, duration: 4}
  - {id: cloud, prompt: a crane over the clouds, duration: 1, engine: dashscope}
"""


def test_failed_scene_fails_the_episode_clearly_then_retry_reuses_the_rest(project_studio, fake_dashscope):
    st = project_studio
    write_project(st.settings.projects_dir, scenes=TWO_SCENES.replace("duration: 4", "duration: 0.5"), face=False)
    episodes = EpisodeService(st.service)
    fake_dashscope.plan = ["RUNNING", "FAILED"]
    parent = finished(st, episodes.render("test-ep", LOCAL).id)
    assert parent.status == "failed"
    assert parent.error.startswith("Scene 'cloud' (clip on dashscope) failed:") and "render again" in parent.error
    assert "场景“cloud”" in parent.error_zh
    wan = next(k for k in children(parent.id).values() if k.engine == "wan2.1-t2v-1.3b")
    wait_for(lambda: st.service.get(wan.id, LOCAL).status == "succeeded")
    fake_dashscope.plan = ["RUNNING", "SUCCEEDED"]
    retried = finished(st, st.service.retry(parent.id, LOCAL).id)
    assert retried.status == "succeeded", retried.error
    steps = {s["scene"]: s["steps"][0] for s in episodes.episode_status(parent.id, LOCAL)["scenes"]}
    assert steps["slow"]["task_id"] == wan.id and not steps["slow"]["reused"]  # its own finished child, kept
    assert fake_dashscope.count("create") == 2
    assert sorted(k.engine for k in children(parent.id).values()) == ["dashscope", "dashscope", "stitch",
                                                                       "wan2.1-t2v-1.3b"]


def test_cancelling_the_episode_cancels_its_running_scenes(project_studio):
    st = project_studio
    slow = PROJECT_YAML.replace("wan2.1-t2v-1.3b: {num_inference_steps: 2, fps: 8}",
                           "wan2.1-t2v-1.3b: {num_inference_steps: 200, fps: 8}").replace(
        "resolution: 64x48", "resolution: 192x128")  # long enough on a quiet machine for the cancel to catch it
    write_project(st.settings.projects_dir, project=slow, scenes=TWO_SCENES.replace("duration: 4", "duration: 8"),
                  face=False)
    episodes = EpisodeService(st.service)
    parent = episodes.render("test-ep", LOCAL, scenes=["slow"])
    running = wait_for(lambda: [k.id for k in children(parent.id).values() if k.status == "running"], timeout=180)
    st.service.cancel(parent.id, LOCAL)
    done = finished(st, parent.id)
    assert done.status == "cancelled"
    wait_for(lambda: all(k.status in ("succeeded", "failed", "cancelled") for k in children(parent.id).values()),
             timeout=120)
    assert {st.service.get(k, LOCAL).status for k in running} == {"cancelled"}
    assert not list((st.settings.projects_dir / "test-ep" / "renders").glob("*.mp4"))


def test_plan_keyframes_faceless_characters_and_default_engine(project_studio, fake_dashscope):
    st = project_studio
    folder = write_project(st.settings.projects_dir, face=False)
    (folder / "assets" / "keys").mkdir()
    (folder / "assets" / "hanli" / "face.png").unlink(missing_ok=True)
    from tests.local.conftest import face_image

    face_image(folder / "assets" / "keys" / "s3.png", seed=9)
    episodes = EpisodeService(st.service)
    episodes.store.upsert_scene("test-ep", {"id": "s3-cloud", "keyframe": "keys/s3.png", "engine": None})
    plan = {s.scene: s for s in episodes.plan("test-ep").scenes}
    assert plan["s2-hanli"].task == "t2v" and [x.engine for x in plan["s2-hanli"].steps] == ["wan2.1-t2v-1.3b"]
    assert "hanli has no reference face" in plan["s2-hanli"].notes[0]  # degrades to text-to-video, and says so
    clip = plan["s3-cloud"].steps
    assert [x.engine for x in clip] == ["svd-xt"] and clip[0].request["image"] == str(folder / "assets/keys/s3.png")
    episodes.store.update_config("test-ep", {"default_engine": "dashscope"})
    plan = {s.scene: s for s in episodes.plan("test-ep").scenes}
    assert {s: [x.engine for x in p.steps] for s, p in plan.items()} == {
        "s1-sky": ["dashscope"], "s2-hanli": ["dashscope"], "s3-cloud": ["dashscope"]}
    assert plan["s3-cloud"].steps[0].request["params"]["model"] == "wanx2.1-i2v-turbo"  # an i2v model for i2v
    assert plan["s1-sky"].steps[0].request["params"].get("model") is None  # the engine's t2v default


def test_an_episode_with_music_has_sound_and_the_editor_files_beside_it(project_studio, fake_dashscope):
    """The wiring through the real job queue: the project's music reaches the stitch job, the MP4 gets an AAC
    track as long as the picture, and the .otio and 剪映 draft land beside it, named in the sidecar."""
    from tests.projects.synth import make_music, probe_av

    st = project_studio
    ws = st.settings.workspace
    scenes = ("scenes:\n  - {id: a, prompt: a crane over the clouds, duration: 1, engine: dashscope}\n"
              "  - {id: b, prompt: a sea of clouds, duration: 1.5, engine: dashscope, transition: crossfade}\n")
    folder = write_project(st.settings.projects_dir, project=PROJECT_YAML + "music: assets/music/theme.wav\n",
                           scenes=scenes, face=False)
    (folder / "assets" / "music").mkdir()
    make_music(folder / "assets" / "music" / "theme.wav", 0.7)
    parent = finished(st, EpisodeService(st.service).render("test-ep", LOCAL).id)
    assert parent.status == "succeeded", parent.error
    render = ws / parent.outputs[0]["file"]
    info = probe_av(render)
    assert info["audio"]["codec"] == "aac" and abs(info["audio"]["seconds"] - info["video"]["frames"] / 8) <= 1 / 8
    side = json.loads(render.with_suffix(".json").read_text(encoding="utf-8"))
    assert side["audio"] is True and side["subtitles"]["cues"] == 0 and side["subtitles"]["srt"] is None
    assert side["otio"] == str(render.with_suffix(".otio").relative_to(ws)) and render.with_suffix(".otio").is_file()
    assert (ws / side["jianying"] / "draft_content.json").is_file()
    assert [s["scene"] for s in side["timeline"]["scenes"]] == ["a", "b"]
