"""The storyboard: data from the project files and job rows, its HTML in both languages, and its scene edits."""

from __future__ import annotations

from app import storyboard as sb
from app.access import LOCAL, Principal
from app.episodes import EpisodeService
from app.ui.storyboard_view import storyboard_html
from tests.conftest import wait_for
from tests.projects.conftest import write_project

SCENES = """\
scenes:
  - id: s1
    prompt: immortal realm sky
    duration: 0.5
    narration: 天边金光乍现。云海翻涌，仙山若隐若现。
  - id: s2
    prompt: Han Li meditating
    characters: [hanli]
    duration: 2
"""


def test_storyboard_shows_the_files_and_the_jobs_and_edits_scenes(project_studio):
    st = project_studio
    folder = write_project(st.settings.projects_dir, scenes=SCENES)
    episodes = EpisodeService(st.service)
    data = sb.storyboard(episodes, "test-ep", LOCAL)
    assert "local-tts" in data["plan_error"]["en"]  # no voices installed here: said, and the board still shows
    assert "local-tts" in storyboard_html(data, "zh") and "天边金光乍现" in storyboard_html(data, "en")

    # a change on disk shows on the next read
    (folder / "scenes.yaml").write_text(SCENES.replace("    narration: 天边金光乍现。云海翻涌，仙山若隐若现。\n", ""),
                                        encoding="utf-8")
    data = sb.storyboard(episodes, "test-ep", LOCAL)
    assert data["plan_error"] is None, data["plan_error"]
    assert [s["id"] for s in data["scenes"]] == ["s1", "s2"] and data["duration"] == 2.5
    assert data["scenes"][0]["status"] == "none" and data["scenes"][0]["engine"] == "wan2.1-t2v-1.3b"
    assert data["scenes"][1]["steps"] == ["sdxl-instantid", "svd-xt"]
    hanli = data["characters"][0]
    assert hanli["face"].startswith("data:image/jpeg;base64,") and hanli["scenes"] == ["s2"]
    zh, en = storyboard_html(data, "zh"), storyboard_html(data, "en")
    assert "未渲染" in zh and "not rendered" in en and "data-scene='s2'" in en
    assert "时间线" in zh and "Timeline" in en and "Han Li meditating" not in en

    # render one scene: its card shows the clip
    job = episodes.render("test-ep", LOCAL, scenes=["s1"])
    wait_for(lambda: st.service.get(job.id, LOCAL).status in ("succeeded", "failed"), timeout=150)
    data = sb.storyboard(episodes, "test-ep", LOCAL)
    s1 = data["scenes"][0]
    assert s1["status"] == "succeeded" and s1["clip"]["file"].endswith(".mp4")
    assert f"src='/files/{s1['clip']['id']}/" in storyboard_html(data, "en")
    assert data["scenes"][1]["status"] == "none"
    assert sb.storyboard(episodes, "test-ep", Principal(user="bob", admin=False))["scenes"][0]["status"] == "none"

    store = episodes.access.scoped(LOCAL)
    store.upsert_scene("test-ep", {"id": "s1", "narration": "天边金光乍现。云海翻涌，仙山若隐若现。"})
    assert sb.edit(store, "test-ep", "split", "s1") == "s1-2"
    scenes = store.get("test-ep").scenes
    assert [s.id for s in scenes] == ["s1", "s1-2", "s2"]
    assert scenes[0].narration == "天边金光乍现。" and scenes[1].narration == "云海翻涌，仙山若隐若现。"
    assert scenes[0].duration == scenes[1].duration == 0.25
    sb.edit(store, "test-ep", "merge", "s1")
    scenes = store.get("test-ep").scenes
    assert [s.id for s in scenes] == ["s1", "s2"] and scenes[0].duration == 0.5
    assert scenes[0].narration == "天边金光乍现。云海翻涌，仙山若隐若现。"
    sb.edit(store, "test-ep", "down", "s1")
    assert [s.id for s in store.get("test-ep").scenes] == ["s2", "s1"]
    assert sb.edit(store, "test-ep", "insert", "s2") == "s2-2"
    assert [s.id for s in store.get("test-ep").scenes] == ["s2", "s2-2", "s1"]
    sb.edit(store, "test-ep", "reroll", "s1")
    assert store.get("test-ep").scene("s1").seed is not None
