"""UI event handlers called directly by ``fn_index`` with another user's key: each decides access
through the services, whatever the page shows."""

from __future__ import annotations

import httpx

from app.access import Principal

from .conftest import call_handler, headers, refused

SAMPLE = "xianxia-sample"
WAN = {"engine": "wan2.1-t2v-1.3b", "prompt": "韩立御剑",
       "params": {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}}


def alices_job(api):
    job = api.studio.service.submit(WAN, Principal(user="alice"))
    return api.wait(job.id)


def count_jobs():
    from app.db import Job, connection

    with connection():
        return Job.select().count()


def test_non_admin_cannot_change_studio_settings(shared):
    bob = shared.keys["bob"]
    error = refused(call_handler(shared, bob, "settings_view", "save_key", ["ARK_API_KEY", "sk-bob-own-account"]))
    assert "admin" in error
    assert shared.studio.secrets.get("ARK_API_KEY") is None
    refused(call_handler(shared, bob, "settings_view", "clear_key", ["DASHSCOPE_API_KEY"]))
    refused(call_handler(shared, bob, "settings_view", "do_start", ["wan2.1-t2v-1.3b"]))
    refused(call_handler(shared, bob, "keys_view", "create_key", ["mallory", "", True]))
    assert not any(k.user == "mallory" for k in shared.studio.ops.keys.list())
    refused(call_handler(shared, bob, "keys_view", "revoke_key", [shared.studio.ops.keys.list()[0].id]))
    # the admin can
    ok = call_handler(shared, shared.keys["root"], "settings_view", "save_key", ["ARK_API_KEY", "ark-org-key"])
    assert ok["success"] and shared.studio.secrets.get("ARK_API_KEY") == "ark-org-key"
    listing = call_handler(shared, bob, "keys_view", "load", [])
    assert listing["success"] and "admin" in str(listing["output"]["data"][0])  # no key listing for bob


def test_handlers_keep_users_to_their_own_jobs(shared):
    bob, job = shared.keys["bob"], alices_job(shared)
    before = count_jobs()
    refused(call_handler(shared, bob, "projects_view", "do_cancel", [job.id]))
    refused(call_handler(shared, bob, "queue_view", "handler", [job.id]))  # cancel / retry / rerun rows
    refused(call_handler(shared, bob, "queue_view", "on_row", [f"cancel:{job.id}"]))  # the buttons on a row
    refused(call_handler(shared, bob, "queue_view", "on_row", [f"rerun:{job.id}"]))
    refused(call_handler(shared, bob, "gallery", "do_rerun", [job.id]))
    refused(call_handler(shared, bob, "projects_view", "poll", [job.id]))
    refused(call_handler(shared, bob, "gallery", "send_to_create", [f"job:{job.id}", "svd-xt"]))
    assert count_jobs() == before and shared.job(job.id).status == "succeeded"
    # bob's queue and gallery show none of alice's jobs
    view = call_handler(shared, bob, "queue_view", "refresh_view", ["all", job.id])
    assert view["success"] and job.id not in str(view["output"]["data"])
    gallery = call_handler(shared, bob, "gallery", "load", [])
    assert gallery["success"] and job.id not in str(gallery["output"]["data"])


def test_gradio_endpoints_keep_users_to_their_own_episodes_and_projects(shared):
    from gradio_client import Client

    alice = Client(shared.base, headers=headers(shared.keys["alice"]), verbose=False)
    bob = Client(shared.base, headers=headers(shared.keys["bob"]), verbose=False)
    # alice makes her own project (duplicating the shared sample) and renders it
    dup = call_handler(shared, shared.keys["alice"], "projects_view", "do_duplicate", [SAMPLE, "alice-series"])
    assert dup["success"], dup
    episode = None
    try:
        episode = alice.predict("alice-series", {"scenes": []}, api_name="/render_project")
    except Exception as exc:  # the sample may not plan without weights: the project is still hers
        assert "alice-series" not in str(exc) or "not found" not in str(exc).lower()
    listing = bob.predict(None, api_name="/projects")
    assert "alice-series" not in [p["id"] for p in listing["projects"]]
    for call in (lambda: bob.predict("alice-series", api_name="/projects"),
                 lambda: bob.predict("alice-series", {}, api_name="/render_project")):
        try:
            call()
            raise AssertionError("bob reached alice's project")
        except Exception as exc:
            assert "alice-series" in str(exc) and ("No project" in str(exc) or "找不到" in str(exc))
    refused(call_handler(shared, shared.keys["bob"], "projects_view", "do_save_settings",
                         ["alice-series", "mine now", "xianxia", 16, "832x480", "", "", "", "", "", 0, "fixed",
                          False, "cut", 0.5, "{}"]))
    refused(call_handler(shared, shared.keys["bob"], "projects_edit", "do_delete", ["alice-series", "s01"]))
    # the plan and its estimates (which jobs of the project exist, what they cost) are hers too
    try:
        bob.predict("alice-series", None, api_name="/plan_episode")
        raise AssertionError("bob read alice's plan")
    except Exception as exc:
        assert "alice-series" in str(exc) and ("No project" in str(exc) or "找不到" in str(exc))
    shown = call_handler(shared, shared.keys["bob"], "plan_view", "show", ["alice-series", []])
    assert shown["success"] and "<table" not in str(shown["output"]["data"])
    assert "No project" in str(shown["output"]["data"]) or "找不到" in str(shown["output"]["data"])
    if episode:
        try:
            bob.predict(episode["task_id"], api_name="/episode")
            raise AssertionError("bob read alice's episode")
        except Exception as exc:
            assert "No task" in str(exc) or "找不到" in str(exc)
        assert shared.job(episode["task_id"]).user == "alice"


def test_shared_sample_is_read_only_for_users(shared):
    msg = call_handler(shared, shared.keys["bob"], "projects_view", "do_render", [SAMPLE, "ep", []])
    assert "read-only" in refused(msg) or "只读" in refused(msg)


def test_every_job_records_its_submitter_on_every_surface(shared):
    from gradio_client import Client

    bob = Client(shared.base, headers=headers(shared.keys["bob"]), verbose=False)
    via_api = bob.predict(WAN, api_name="/submit")
    assert shared.job(via_api["task_id"]).user == "bob"
    r = httpx.post(f"{shared.base}/video/submit", headers=headers(shared.keys["bob"]),
                   json={"model": "Wan2.1-T2V-1.3B", "prompt": "云海翻腾，仙鹤飞过山门，晨光", "image_size": "480x832",
                         "num_frames": 25, "guidance_scale": 5.0, "infer_steps": 20})
    assert r.status_code == 202, r.text
    newest = shared.job(r.json()["requestId"])
    assert newest.user == "bob"
    shared.studio.service.cancel(newest.id, Principal(user="bob"))  # (no need to render it on CPU)
