"""kill -9 the studio in the middle of an episode; after a restart it completes without redoing
finished scenes. Driven through the Gradio endpoints (/projects, /render_project, /episode)."""

from __future__ import annotations

import time

from gradio_client import Client

from core.media import probe
from tests.conftest import install_weights
from tests.e2e.proc import StudioProcess
from tests.projects.conftest import write_project

WAN = "wan2.1-t2v-1.3b"
PROJECT = """\
title: Crash drill
style: wuxia
fps: 8
resolution: 64x64
transition: crossfade
transition_duration: 0.25
engine_params:
  wan2.1-t2v-1.3b: {num_inference_steps: 2, fps: 8}
"""
SCENES = """\
scenes:
  - {id: one, prompt: bamboo forest at dawn, duration: 4}
  - {id: two, prompt: sword duel on a rooftop, duration: 4, params: {num_inference_steps: 150}}
  - {id: three, prompt: lanterns over a river, duration: 4}
"""  # the middle scene is slow: the studio is killed while it runs


def wait(fn, timeout=120.0, what="condition", log=lambda: ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last}); log:\n{log()}")


def test_kill9_mid_episode_then_restart_finishes_without_redoing_scenes(tmp_path, tiny_wan_dir):
    ws = tmp_path / "ws"
    ws.mkdir()
    install_weights(ws, WAN, tiny_wan_dir)
    write_project(ws / "projects", "drill", project=PROJECT, characters="characters: {}\n", scenes=SCENES, face=False)
    env = {"XIANYING_SECRETS": str(tmp_path / "secrets.yaml")}
    proc = StudioProcess(ws, env=env).start()
    try:
        client = Client(proc.url, download_files=str(tmp_path / "dl"), verbose=False)
        listed = {p["id"] for p in client.predict(api_name="/projects")["projects"]}
        assert {"drill", "xianxia-sample"} <= listed  # the sample is installed at first start
        project = client.predict("drill", api_name="/projects")
        assert [s["steps"] for s in project["scenes"]] == [[f"clip: {WAN}"]] * 3
        started = client.predict("drill", {"name": "drill"}, api_name="/render_project")
        episode = started["task_id"]

        def mid_episode():
            s = client.predict(episode, api_name="/episode")
            steps = [sc["steps"][0] for sc in s["scenes"]]
            return steps if steps[0]["status"] == "succeeded" and steps[1]["status"] == "running" else None

        before = wait(mid_episode, what="scene one done, scene two running")
    finally:
        proc.kill9()

    proc2 = StudioProcess(ws, env=env, port=proc.port).start()
    try:
        client = Client(proc2.url, download_files=str(tmp_path / "dl2"), verbose=False)
        final = wait(lambda: (s := client.predict(episode, api_name="/episode"))["status"] in
                     ("succeeded", "failed", "cancelled") and s, what="episode finished", log=proc2.log)
        assert final["status"] == "succeeded", final
        steps = [sc["steps"][0] for sc in final["scenes"]]
        kids = client.predict({"parent": episode}, api_name="/tasks")
        assert sorted(k["engine"] for k in kids) == ["stitch", WAN, WAN, WAN]  # no scene submitted twice
        attempts = {k["task_id"]: k["attempts"] for k in kids}
        assert [s["task_id"] for s in steps] == [s["task_id"] for s in before]
        assert attempts[steps[0]["task_id"]] == 1  # finished before the crash: not redone
        assert attempts[steps[1]["task_id"]] == 2  # interrupted: run again once
        assert attempts[steps[2]["task_id"]] == 1
        assert final["attempts"] == 1  # the episode resumed; it was not started over
        render = ws / final["outputs"][0]["file"]
        info = probe(render)
        assert info["frames"] == 3 * 32 - 2 * 2 and (info["width"], info["height"]) == (64, 64)
        assert not list((ws / "projects" / "drill" / "renders").glob(".*"))  # no half-written files
    finally:
        assert proc2.stop() == 0, proc2.log()
