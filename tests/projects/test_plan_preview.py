"""The plan shown before Render: which steps run, which are reused, and what the render costs —
with the reuse test the episode runner itself applies, so "reused" is a promise."""

from __future__ import annotations

import pytest

from app.access import LOCAL, Principal
from app.episode_estimate import preview
from app.episodes import EpisodeService
from app.ui.plan_view import plan_html
from core.errors import AppError
from tests.projects.conftest import PROJECT_YAML, SCENES_YAML, write_project
from tests.projects.test_continuity import finished

PRICED = PROJECT_YAML.replace("  dashscope: {prompt_extend: false}",
                              "  dashscope: {prompt_extend: false, model: wan2.2-t2v-plus}")


def by_step(p):
    return {(r["scene"], r["step"]): r for r in p["steps"]}


def test_plan_says_what_runs_what_is_reused_and_what_it_costs(project_studio):
    st = project_studio
    write_project(st.settings.projects_dir, project=PRICED)
    episodes = EpisodeService(st.service)

    first = preview(episodes, "test-ep", LOCAL)
    rows = by_step(first)
    assert rows[("s1-sky", "clip")]["state"] == "new"
    assert rows[("s2-hanli", "still")]["state"] == "new"
    assert rows[("s2-hanli", "clip")]["state"] == "after"  # its first frame is the still, not made yet
    cloud = rows[("s3-cloud", "clip")]["estimate"]
    assert cloud["cny"] and cloud["cny"] > 0 and first["cny"] == pytest.approx(cloud["cny"])
    assert first["runs"] == 4 and first["unknown"] == 3  # the three local steps: first run on this machine
    zh = plan_html(preview(episodes, "test-ep", LOCAL, lang="zh"), "zh")
    assert "步要渲染" in zh and "云端约 ¥" in zh and "Scene" not in zh and ">片段<" in zh and ">clip<" not in zh
    assert "steps to render" in plan_html(first, "en")

    parent = finished(st, episodes.render("test-ep", LOCAL).id)
    assert parent.status == "succeeded", (parent.error, parent.message)
    again = preview(episodes, "test-ep", LOCAL)
    assert {r["state"] for r in again["steps"]} == {"cached"}, again["steps"]
    assert again["runs"] == 0 and again["cny"] == 0

    # one edited prompt: that scene alone runs, and now this machine has a time for the tiny Wan
    scenes = (st.settings.projects_dir / "test-ep" / "scenes.yaml")
    scenes.write_text(SCENES_YAML.replace("immortal realm sky, golden scroll", "immortal realm at dawn"),
                      encoding="utf-8")
    edited = preview(episodes, "test-ep", LOCAL)
    states = {k: r["state"] for k, r in by_step(edited).items()}
    assert states.pop(("s1-sky", "clip")) == "new" and set(states.values()) == {"cached"}
    assert edited["runs"] == 1 and edited["unknown"] == 0 and edited["local_seconds"] > 0

    # and the runner agrees: the second render makes exactly one new job
    second = finished(st, episodes.render("test-ep", LOCAL).id)
    made = [s for sc in episodes.episode_status(second.id, LOCAL)["scenes"] for s in sc["steps"] if not s["reused"]]
    assert [s["step"] for s in made] == ["clip"] and len(made) == 1


def test_plan_of_another_users_project_is_refused(project_studio):
    episodes = EpisodeService(project_studio.service)
    write_project(project_studio.settings.projects_dir)
    episodes.access.set_owner("test-ep", Principal(user="alice"))
    assert preview(episodes, "test-ep", Principal(user="alice"))["runs"] == 4
    with pytest.raises(AppError) as err:
        preview(episodes, "test-ep", Principal(user="mallory"))
    assert "test-ep" in str(err.value) and "steps" not in str(err.value)


def test_an_engine_that_is_not_ready_is_explained_in_each_language(project_studio):
    """Narration with no voices downloaded: the plan names the engine and what it needs, in English and
    in Chinese (the engine's own reason in that language, not the English one)."""
    write_project(project_studio.settings.projects_dir,
                  scenes=SCENES_YAML.replace("    duration: 0.5\n", "    duration: 0.5\n    narration: 夜色如墨。\n", 1))
    with pytest.raises(AppError) as err:
        preview(EpisodeService(project_studio.service), "test-ep", LOCAL)
    assert "local-tts" in err.value.en and "download" in err.value.en.lower()
    assert "local-tts" in err.value.zh and "download" not in err.value.zh.lower()
