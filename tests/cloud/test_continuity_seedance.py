"""``continue: true`` over Seedance: the plan asks the clip a scene continues from for its last frame
(``return_last_frame``, the project need not say so), and the next
clip starts from the frame the provider returned (not one read back from the MP4), through the real
Ark adapter, the episode runner and the loopback Ark fake."""

from __future__ import annotations

import base64
import hashlib

from app.access import LOCAL
from app.db import Job
from app.episodes import EpisodeService
from tests.cloud.helpers import wait_job
from tests.projects.conftest import write_project

PROJECT = """\
title: 接续 Continuity
style: none
fps: 8
resolution: 64x48
seed: 11
transition: cut
t2v_engine: ark
i2v_engine: ark
engine_params:
  ark: {model: doubao-seedance-1-5-pro-251215, resolution: 480p, duration: 5}
"""
SCENES = """\
scenes:
  - id: s1
    prompt: a sword of light crosses the sea of clouds
    duration: 1
  - id: s2
    prompt: the sword lands on the peak
    duration: 1
    continue: true
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_next_shot_starts_from_seedances_returned_last_frame(studio_for):
    studio, fake = studio_for("ark")
    ws = studio.settings.workspace
    write_project(studio.settings.projects_dir, "seq", project=PROJECT, characters="characters: {}\n",
                  scenes=SCENES, face=False)
    episodes = EpisodeService(studio.service)
    parent = wait_job(studio, episodes.render("seq", LOCAL).id, timeout=60)
    assert parent.status == "succeeded", (parent.error, parent.message)

    status = episodes.episode_status(parent.id, LOCAL)
    by_scene = {s["scene"]: {st["step"]: st for st in s["steps"]} for s in status["scenes"]}
    s1 = Job.get_by_id(by_scene["s1"]["clip"]["task_id"])
    s2 = Job.get_by_id(by_scene["s2"]["clip"]["task_id"])
    assert s1.params.get("return_last_frame") is True and not s2.params.get("return_last_frame")
    returned = [o for o in s1.outputs if o["kind"] == "image" and o["meta"].get("role") == "last_frame"]
    assert len(returned) == 1, s1.outputs
    frame = (ws / returned[0]["file"]).read_bytes()
    assert s2.images and s2.images[0]["role"] == "first_frame"
    assert sha((ws / s2.images[0]["path"]).read_bytes()) == sha(frame)  # the provider's frame, as it came

    # and that frame is what the vendor received as the second task's first frame
    sent = [t for t in dict(fake.tasks).values() if t["text"].startswith("the sword lands")]
    assert len(sent) == 1
    images = [c for c in sent[0]["body"]["content"] if c.get("type") == "image_url"]
    assert [c.get("role") for c in images] == ["first_frame"]
    url = images[0]["image_url"]["url"]
    assert url.startswith("data:image/") and sha(base64.b64decode(url.split(",", 1)[1])) == sha(frame)
