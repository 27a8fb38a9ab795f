"""Drafting from a chapter, attacked: other users' projects, shared projects, odd and huge bodies."""

from __future__ import annotations

import httpx
import pytest

from app.access import Principal
from core.errors import Forbidden, NotFound

from .conftest import headers

TEXT = "夜色如墨。沈墨站在渡口。沈墨说：“今夜能过江吗？”老周说：“水太急。”沈墨走进茶棚。"


def drafts_of(api):
    from app.drafts import DraftService
    from app.episodes import EpisodeService

    return DraftService(api.studio.service, EpisodeService(api.studio.service).access)


def test_bob_cannot_draft_into_alices_project(shared):
    drafts, alice, bob = drafts_of(shared), Principal(user="alice"), Principal(user="bob")
    pid = drafts.draft({"text": TEXT, "title": "alice-ferry"}, alice)["project"]
    before = drafts.store.get(pid)
    scenes = [s.model_dump() for s in before.scenes]
    with pytest.raises(NotFound):
        drafts.draft({"text": TEXT, "project": pid}, bob)
    with httpx.Client(base_url=shared.base, timeout=60) as client:
        r = client.post(f"/api/v1/projects/{pid}/draft", headers=headers(shared.keys["bob"]), json={"text": TEXT})
        assert r.status_code == 404 and pid in r.text, r.text
        r = client.post("/api/v1/projects/draft", headers=headers(shared.keys["bob"]),
                        json={"text": TEXT, "project": pid, "after_scene": "s001"})
        assert r.status_code == 404, r.text
        r = client.post(f"/api/v1/projects/{pid}/draft", json={"text": TEXT})  # no key at all
        assert r.status_code == 401
    from gradio_client import Client

    client = Client(shared.base, headers=headers(shared.keys["bob"]), verbose=False)
    with pytest.raises(Exception, match="No project with id"):
        client.predict({"text": TEXT, "project": pid}, api_name="/draft_project")
    assert [s.model_dump() for s in drafts.store.get(pid).scenes] == scenes
    # alice herself may, through both doors
    with httpx.Client(base_url=shared.base, timeout=60) as http:
        r = http.post(f"/api/v1/projects/{pid}/draft", headers=headers(shared.keys["alice"]), json={"text": TEXT})
    assert r.status_code == 200, r.text
    assert r.json()["scenes_added"] and r.json()["project"] == pid
    own = Client(shared.base, headers=headers(shared.keys["alice"]), verbose=False)
    out = own.predict({"text": TEXT, "project": pid, "after_scene": "s001"}, api_name="/draft_project")
    assert out["project"] == pid and out["scenes_added"]
    assert [s.id for s in drafts.store.get(pid).scenes][1:1 + len(out["scenes_added"])] == out["scenes_added"]


def test_a_shared_project_is_read_only_to_users(shared):
    drafts = drafts_of(shared)
    pid = drafts.store.create("shared-one", "Shared").id  # no owner: a shared project
    with pytest.raises(Forbidden):
        drafts.draft({"text": TEXT, "project": pid}, Principal(user="bob"))
    with httpx.Client(base_url=shared.base, timeout=60) as client:
        r = client.post(f"/api/v1/projects/{pid}/draft", headers=headers(shared.keys["bob"]), json={"text": TEXT})
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/json")
    assert drafts.store.get(pid).scenes == []


def test_a_script_job_is_not_counted_as_a_video(shared, monkeypatch):
    """erin may make 2 videos a day; drafting with an LLM is not one of them."""
    from tests.cloud.fake_chat import API_KEY, FakeChat

    with FakeChat(prefix="/compatible-mode/v1") as chat:
        monkeypatch.setenv("DASHSCOPE_API_KEY", API_KEY)
        monkeypatch.setenv("DASHSCOPE_COMPAT_BASE_URL", chat.url + "/compatible-mode/v1")
        erin = Principal(user="erin")
        for _ in range(3):
            out = drafts_of(shared).draft({"text": TEXT, "engine": "qwen"}, erin, wait_s=60)
            assert out["scenes_added"]


@pytest.mark.parametrize("body", [
    b'{"text": "x", "seconds": 1e400}',
    b'{"text": "x", "scenes": 1e400}',
    b'{"text": "x", "seconds": NaN}',
    b'{"text": "x", "after_scene": "../../etc"}',
    b'{"text": 5}',
    b'[1, 2]',
    b'{"text": "x", "overwrite": true}',
])
def test_odd_bodies_get_a_json_4xx(shared, body):
    with httpx.Client(base_url=shared.base, timeout=60) as client:
        r = client.post("/api/v1/projects/draft", content=body,
                        headers={**headers(shared.keys["bob"]), "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json") and "detail" in r.json()


def test_huge_text_gets_a_clean_4xx_naming_the_limit(shared):
    huge = "夜" * 40_001
    with httpx.Client(base_url=shared.base, timeout=60) as client:
        r = client.post("/api/v1/projects/draft", headers=headers(shared.keys["bob"]), json={"text": huge})
        assert r.status_code == 422 and "40000" in r.text, r.text[:300]
        r = client.post("/api/v1/projects/draft", headers=headers(shared.keys["bob"]),
                        content=b'{"text": "' + b"x" * (17 * 2**20) + b'"}')
        assert r.status_code == 413
    from gradio_client import Client

    client = Client(shared.base, headers=headers(shared.keys["bob"]), verbose=False)
    with pytest.raises(Exception, match="40000"):
        client.predict({"text": huge}, api_name="/draft_project")
    with httpx.Client(base_url=shared.base, timeout=60, headers=headers(shared.keys["bob"])) as raw:
        r = raw.post("/gradio_api/call/draft_project", content=b'{"data": [{"text": "x", "seconds": 1e400}]}',
                     headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        answer = raw.get(f"/gradio_api/call/draft_project/{r.json()['event_id']}").text
    assert "event: error" in answer and "seconds" in answer and "finite" in answer, answer
    assert not [p for p in drafts_of(shared).access.summaries(Principal(user="bob"))
                if p.get("owner") == "bob"]


def test_rest_answers_202_while_an_llm_drafts_and_only_the_owner_adds_it(shared, monkeypatch):
    from tests.cloud.fake_chat import API_KEY, FakeChat
    from tests.conftest import wait_for

    with FakeChat(prefix="/api/v3") as chat:
        monkeypatch.setenv("ARK_API_KEY", API_KEY)
        monkeypatch.setenv("ARK_BASE_URL", chat.url + "/api/v3")
        chat.latency = 1.0
        with httpx.Client(base_url=shared.base, timeout=60) as client:
            r = client.post("/api/v1/projects/draft", headers=headers(shared.keys["alice"]),
                            json={"text": TEXT, "engine": "ark-script", "wait": 0})
            assert r.status_code == 202 and r.json()["project"] is None, r.text
            task = r.json()["task_id"]
            wait_for(lambda: shared.job(task).status == "succeeded", timeout=60)
            r = client.post("/api/v1/projects/draft", headers=headers(shared.keys["bob"]), json={"task_id": task})
            assert r.status_code == 404
            r = client.post("/api/v1/projects/draft", headers=headers(shared.keys["alice"]), json={"task_id": task})
            assert r.status_code == 200 and r.json()["scenes_added"], r.text
            assert shared.job(task).user == "alice" and API_KEY not in r.text


def test_the_plan_route_keeps_to_the_callers_projects(shared):
    """GET /api/v1/projects/{id}/plan: another user's project is not found; odd ids and scene lists are 422."""
    drafts, alice = drafts_of(shared), Principal(user="alice")
    pid = drafts.draft({"text": TEXT, "title": "alice-plan"}, alice)["project"]
    with httpx.Client(base_url=shared.base, timeout=60) as client:
        r = client.get(f"/api/v1/projects/{pid}/plan", headers=headers(shared.keys["bob"]))
        assert r.status_code == 404 and pid in r.text and "steps" not in r.text, r.text
        assert client.get(f"/api/v1/projects/{pid}/plan").status_code == 401
        for bad in ("/api/v1/projects/..%2F..%2Fsecrets/plan", f"/api/v1/projects/{pid}/plan?scenes=<script>",
                    f"/api/v1/projects/{pid}/plan?lang=fr"):
            r = client.get(bad, headers=headers(shared.keys["alice"]))
            assert r.status_code in (404, 422) and r.headers["content-type"].startswith("application/json"), (bad, r.text)
        r = client.get(f"/api/v1/projects/{pid}/plan", headers=headers(shared.keys["alice"]),
                       params={"lang": "zh"})
    # alice's drafted project has narration and no speech engine here: the plan says so, as a person reads it
    assert r.status_code == 503 and "local-tts" in r.json()["detail"], r.text
