"""API keys: 401s, who sees which jobs, the Gradio API and UI behind keys, binding rules, rate limits."""

from __future__ import annotations

import json
import re

import pytest

from tests.api.conftest import Api, serve

SUBMIT = {"prompt": "A beautiful sunset over the mountains", "image_size": "480x832", "num_frames": 81,
          "guidance_scale": 5.0, "infer_steps": 50}


def test_rest_needs_a_valid_key_once_keys_exist(make_api):
    api = make_api(keys={"alice": False, "bob": False})
    key = api.keys["alice"]
    r = api.client.post("/video/submit", json=SUBMIT)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["detail"]
    r = api.client.post("/video/submit", json=SUBMIT, headers=Api.auth(key[:-1] + "x"))
    assert r.status_code == 401 and key[:-1] not in r.text
    r = api.client.post("/video/submit", json=SUBMIT, headers=Api.auth(key))
    assert r.status_code == 202 and api.job(r.json()["requestId"]).user == "alice"
    row = api.studio.ops.keys.list("alice")[0]
    api.studio.ops.keys.revoke(row.id)
    assert api.client.post("/video/submit", json=SUBMIT, headers=Api.auth(key)).status_code == 401
    assert api.client.get("/api/v1/tasks", headers={"Authorization": "Basic abc"}).status_code == 401
    api.studio.ops.keys.revoke(api.studio.ops.keys.list("bob")[0].id)  # no active key left: open again
    assert api.client.get("/api/v1/tasks").status_code == 200
    # public: health and docs; the UI on 127.0.0.1 stays open to the person at the machine
    assert api.client.get("/api/v1/health").status_code == 200
    assert api.client.get("/openapi.json").status_code == 200
    assert api.client.get("/", headers={"Accept": "text/html"}).status_code == 200


def test_users_see_and_cancel_only_their_own_jobs(make_api):
    api = make_api(keys={"alice": False, "bob": False, "root": True})
    alice, bob, root = (Api.auth(api.keys[u]) for u in ("alice", "bob", "root"))
    rid = api.client.post("/video/submit", json=SUBMIT, headers=alice).json()["requestId"]
    group = api.client.post("/api/v1/videos/generate", headers=alice, json={
        "scenes": [{"id": 0, "prompt": "云海", "duration": 1}]}).json()["task_id"]
    for path in (f"/api/v1/tasks/{rid}", f"/api/v1/tasks/{group}", f"/api/v1/tasks/{rid}/status",
                 f"/api/v1/videos/tasks/{rid}"):
        assert api.client.get(path, headers=bob).status_code == 404, path
        assert api.client.get(path, headers=alice).status_code == 200, path
    assert api.client.post("/video/status", json={"requestId": rid}, headers=bob).status_code == 404
    assert api.client.post("/video/cancel", json={"requestId": rid}, headers=bob).status_code == 404
    assert api.client.post(f"/api/v1/tasks/{group}/cancel", headers=bob).status_code == 404
    assert api.client.post("/aigc/task", json={"task_id": rid}, headers=bob).status_code == 404
    assert api.client.get("/api/v1/tasks", headers=bob).json() == {"tasks": []}
    assert api.job(rid).status == "queued"
    assert {t["task_id"] for t in api.client.get("/api/v1/tasks", headers=alice).json()["tasks"]} >= {rid}
    assert rid in {t["task_id"] for t in api.client.get("/api/v1/tasks", headers=root).json()["tasks"]}
    assert api.client.post("/video/cancel", json={"requestId": rid}, headers=root).json() == {"status": "Succeed"}
    assert api.job(rid).status == "cancelled"


def test_required_mode_protects_the_gradio_ui_and_api(make_api):
    api = make_api(rest={"auth": "required"}, keys={"alice": False})
    page = api.client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/auth/login?next=%2F"
    assert api.client.get("/gradio_api/info").status_code == 401
    assert api.client.get("/config").status_code == 401
    assert api.client.get("/gradio_api/info", headers=Api.auth(api.keys["alice"])).status_code == 200
    login = api.client.get("/auth/login")
    assert login.status_code == 200 and 'name="key"' in login.text
    bad = api.client.post("/auth/login", data={"key": "xy_wrong", "next": "/"}, follow_redirects=False)
    assert bad.status_code == 401
    ok = api.client.post("/auth/login", data={"key": api.keys["alice"], "next": "//evil.example"},
                         follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert api.keys["alice"] not in cookie  # a session token, not the key
    assert api.client.get("/", headers={"Accept": "text/html"}).status_code == 200  # the client keeps the cookie
    api.client.get("/auth/logout")
    assert api.client.get("/gradio_api/info").status_code == 401
    api.client.post("/auth/login", data={"key": api.keys["alice"]})
    assert api.client.get("/gradio_api/info").status_code == 200
    api.studio.ops.keys.revoke(api.studio.ops.keys.list("alice")[0].id)  # ends the key's sessions
    assert api.client.get("/gradio_api/info").status_code == 401


def test_gradio_client_sends_the_key_as_a_header(make_api):
    from gradio_client import Client

    api = make_api(rest={"auth": "required"}, keys={"alice": False}, client=False)
    with serve(api.app) as url:
        client = Client(url, headers=Api.auth(api.keys["alice"]), verbose=False)
        engines = client.predict(api_name="/engines")
        assert "wan2.1-t2v-1.3b" in {e["id"] for e in engines}
        job = client.predict({"engine": "wan2.1-t2v-1.3b", "prompt": "仙鹤",
                              "params": {"width": 32, "height": 32, "num_frames": 5, "num_inference_steps": 1}},
                             api_name="/submit")
        assert api.job(job["task_id"]).user == "alice"
        for headers in ({}, Api.auth("xy_not-a-key")):
            with pytest.raises(Exception, match="credentials were not provided"):  # noqa: B017
                Client(url, headers=headers, verbose=False).predict(api_name="/engines")


def test_non_loopback_bind_needs_keys(make_api, workspace, monkeypatch, capsys):
    import launch
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="Refusing to listen on 0.0.0.0"):
        make_api(host="0.0.0.0")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(workspace / "gradio-tmp"))
    assert launch.main(["--host", "0.0.0.0", "--port", "1", "--no-browser", "--workspace", str(workspace)]) == 2
    assert "Refusing to listen on 0.0.0.0" in capsys.readouterr().err

    api = make_api(host="0.0.0.0", keys={"ops": True})  # the key is created before the app: it starts
    assert api.client.get("/api/v1/tasks").status_code == 401
    assert api.client.get("/gradio_api/info").status_code == 401
    assert api.client.get("/api/v1/tasks", headers=Api.auth(api.keys["ops"])).status_code == 200


def test_rate_limit_per_key(make_api):
    api = make_api(rest={"rate_limit": {"per_minute": 6, "burst": 3}}, keys={"alice": False, "bob": False})
    alice, bob = Api.auth(api.keys["alice"]), Api.auth(api.keys["bob"])
    codes = [api.client.get("/api/v1/tasks", headers=alice).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api.client.get("/api/v1/tasks", headers=alice)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 10
    assert api.client.get("/api/v1/tasks", headers=bob).status_code == 200


def test_keys_command_line(workspace, capsys):
    import launch

    ws = ["--workspace", str(workspace)]
    assert launch.main(["keys", "create", "--user", "carol", "--label", "render box", *ws]) == 0
    key = re.search(r"xy_[A-Za-z0-9_-]{43}", capsys.readouterr().out).group(0)
    assert launch.main(["keys", "list", "--json", *ws]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["user"], k["active"], k["label"]) for k in listed] == [("carol", True, "render box")]
    assert key not in json.dumps(listed) and listed[0]["hint"] == key[:7] + "…"
    assert launch.main(["keys", "revoke", listed[0]["id"], *ws]) == 0
    assert launch.main(["keys", "list", "--json", *ws]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])[0]["active"] is False
    assert launch.main(["keys", "create", "--user", "../x", *ws]) == 2
    assert launch.main(["keys", "revoke", "123", *ws]) == 2
