"""Shot continuity (``continue: true``) and reused content (``from:``) through real episodes on tiny pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.access import LOCAL
from app.db import Job
from app.episodes import EpisodeService
from core.errors import ProfileError, ValidationError
from core.media import last_frame
from tests.conftest import wait_for
from tests.projects.conftest import PROJECT_YAML, write_project

TERMINAL = ("succeeded", "failed", "cancelled")

SCENES = """\
scenes:
  - id: s1
    prompt: immortal realm sky, golden scroll
    duration: 0.5
  - id: s2
    prompt: the scroll unrolls
    duration: 0.5
    continue: true
"""


def finished(studio, job_id, timeout=150.0):
    return wait_for(lambda: (j := studio.service.get(job_id, LOCAL)).status in TERMINAL and j, timeout=timeout)


def clips(episodes, parent_id):
    status = episodes.episode_status(parent_id, LOCAL)
    return {s["scene"]: {st["step"]: st for st in s["steps"]} for s in status["scenes"]}


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_plan_refuses_continue_on_the_first_scene_and_without_the_previous_scene(project_studio):
    st = project_studio
    write_project(st.settings.projects_dir, scenes=SCENES.replace("    duration: 0.5\n  - id: s2",
                                                                   "    duration: 0.5\n    continue: true\n  - id: s2", 1))
    episodes = EpisodeService(st.service)
    with pytest.raises(ProfileError) as err:
        episodes.plan("test-ep")
    assert "scenes[0].continue" in str(err.value) and "first scene" in str(err.value) and "第一个场景" in err.value.zh

    write_project(st.settings.projects_dir, scenes=SCENES)
    plan = episodes.plan("test-ep")
    s2 = plan.scenes[1]
    assert s2.task == "i2v" and [x.engine for x in s2.steps] == ["svd-xt"]
    assert s2.steps[0].request["image"] == "@last_of:s1"
    assert any("last frame of scene s1" in n for n in s2.notes)
    with pytest.raises(ValidationError) as err:
        episodes.plan("test-ep", ["s2"])
    assert "render 's1' together with 's2'" in str(err.value)


def test_continued_scene_starts_from_the_last_frame_and_follows_the_scene_before(project_studio):
    st = project_studio
    ws = st.settings.workspace
    write_project(st.settings.projects_dir, scenes=SCENES)
    episodes = EpisodeService(st.service)

    first = finished(st, episodes.render("test-ep", LOCAL).id)
    assert first.status == "succeeded", (first.error, first.message)
    steps = clips(episodes, first.id)
    s1, s2 = Job.get_by_id(steps["s1"]["clip"]["task_id"]), Job.get_by_id(steps["s2"]["clip"]["task_id"])
    assert s2.engine == "svd-xt" and s2.images[0]["role"] == "first_frame"
    given = pixels(ws / s2.images[0]["path"])
    expected = pixels_of(last_frame(ws / s1.outputs[0]["file"]))
    assert given.shape == expected.shape and np.array_equal(given, expected)
    assert not np.array_equal(given, pixels_of(first_frame_of(ws / s1.outputs[0]["file"])))  # the last, not the first

    # nothing changed: both clips are reused
    again = finished(st, episodes.render("test-ep", LOCAL).id)
    assert again.status == "succeeded", again.error
    steps2 = clips(episodes, again.id)
    assert steps2["s1"]["clip"]["reused"] and steps2["s2"]["clip"]["reused"]
    assert steps2["s2"]["clip"]["task_id"] == s2.id

    # scene 1 changes: its new last frame makes scene 2 render again (no extra rule: the input hash)
    episodes.store.upsert_scene("test-ep", {"id": "s1", "prompt": "immortal realm sky at night, red moon"})
    third = finished(st, episodes.render("test-ep", LOCAL).id)
    assert third.status == "succeeded", third.error
    steps3 = clips(episodes, third.id)
    assert not steps3["s1"]["clip"]["reused"] and not steps3["s2"]["clip"]["reused"]
    new1, new2 = Job.get_by_id(steps3["s1"]["clip"]["task_id"]), Job.get_by_id(steps3["s2"]["clip"]["task_id"])
    assert new2.id != s2.id and new2.parent == third.id
    assert np.array_equal(pixels(ws / new2.images[0]["path"]), pixels_of(last_frame(ws / new1.outputs[0]["file"])))


def test_from_reuses_a_scene_clip_or_a_finished_job(project_studio):
    st = project_studio
    scenes = SCENES.replace("    continue: true\n", "") + "  - id: s3\n    prompt: again\n    duration: 0.75\n    from: s1\n"
    write_project(st.settings.projects_dir, scenes=scenes)
    episodes = EpisodeService(st.service)
    plan = episodes.plan("test-ep")
    assert any("reuses the clip of scene s1" in n for n in plan.scenes[2].notes)
    parent = finished(st, episodes.render("test-ep", LOCAL).id)
    assert parent.status == "succeeded", (parent.error, parent.message)
    steps = clips(episodes, parent.id)
    assert steps["s3"]["clip"]["task_id"] == steps["s1"]["clip"]["task_id"]  # one job serves both
    assert Job.select().where(Job.parent == parent.id, Job.engine == "wan2.1-t2v-1.3b").count() == 2  # s1, s2

    # job:<id>: a finished video of the caller's is taken as the clip; someone else's is refused
    s2_job = steps["s2"]["clip"]["task_id"]
    episodes.store.upsert_scene("test-ep", {"id": "s3", "prompt": "again", "from": f"job:{s2_job}"})
    assert any(f"job {s2_job}" in n for n in episodes.plan("test-ep").scenes[2].notes)
    second = finished(st, episodes.render("test-ep", LOCAL).id)
    assert second.status == "succeeded", second.error
    assert clips(episodes, second.id)["s3"]["clip"]["task_id"] == s2_job

    Job.update(user="alice").where(Job.id == s2_job).execute()
    third = finished(st, episodes.render("test-ep", LOCAL).id)
    assert third.status == "failed" and f"job:{s2_job}" in third.error and "not a finished video job" in third.error


def pixels_of(image):
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def first_frame_of(path):
    from core.media import first_frame

    return first_frame(path)
