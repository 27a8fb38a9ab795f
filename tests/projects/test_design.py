"""Character Design on the tiny SDXL: candidates as the caller's jobs, pick one, the next still keeps that face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.access import LOCAL, Principal
from app.character_design import DesignService
from app.db import Job
from app.episodes import EpisodeService
from core.errors import NotFound, ValidationError
from tests.conftest import wait_for
from tests.projects.conftest import write_project

TERMINAL = ("succeeded", "failed", "cancelled")
CHARACTERS = """\
characters:
  hanli:
    name: 韩立 Han Li
    prompt: Han Li, young cultivator, black hair
  sumei:
    name: 苏梅 Su Mei
    prompt: Su Mei, swordswoman in white
"""
SCENES = """\
scenes:
  - id: s2-hanli
    prompt: Han Li meditating on a rock
    characters: [hanli]
    duration: 0.5
"""
TINY = {"width": 64, "height": 64, "num_inference_steps": 2}


def done(st, job_id):
    return wait_for(lambda: (j := Job.get_by_id(job_id)).status in TERMINAL and j, timeout=150)


def test_design_pick_and_the_next_still_uses_the_face(project_studio):
    st = project_studio
    ws = st.settings.workspace
    folder = write_project(st.settings.projects_dir, characters=CHARACTERS, scenes=SCENES, face=False)
    design = DesignService(st.service, EpisodeService(st.service).store)

    out = design.design("test-ep", "hanli", LOCAL, count=2, params=TINY)
    assert len(out["jobs"]) == 1 and out["reference"] is None
    job = done(st, out["jobs"][0]["id"])
    assert job.status == "succeeded", job.error
    assert job.engine == "sdxl" and job.user == LOCAL.user and job.params["num_images"] == 2
    assert "Han Li, young cultivator" in job.prompt and "portrait" in job.prompt
    got = design.candidates("test-ep", "hanli", LOCAL)
    assert [i["ref"] for i in got["images"]] == [f"{job.id}#0", f"{job.id}#1"]

    # a re-roll of Su Mei does not touch Han Li's candidates
    other = design.design("test-ep", "sumei", LOCAL, count=1, params=TINY)
    assert design.candidates("test-ep", "hanli", LOCAL)["images"] == got["images"]
    assert other["jobs"][0]["id"] != job.id

    with pytest.raises(ValidationError):
        design.pick("test-ep", "hanli", f"{other['jobs'][0]['id']}#0", LOCAL)  # not one of Han Li's
    picked = design.pick("test-ep", "hanli", f"{job.id}#1", LOCAL)
    face = folder / "assets" / picked["reference"]
    assert picked["reference"].startswith("hanli/design-") and face.is_file()
    assert face.read_bytes() == (ws / job.outputs[1]["file"]).read_bytes()
    project = design.store.get("test-ep")
    assert project.characters["hanli"].reference_images == [picked["reference"]]
    assert project.characters["sumei"].reference_images == []

    # the next still of Han Li is an InstantID still from that face
    episodes = EpisodeService(st.service)
    plan = episodes.plan("test-ep")
    assert [s.engine for s in plan.scenes[0].steps] == ["sdxl-instantid", "svd-xt"]
    parent = done(st, episodes.render("test-ep", LOCAL).id)
    assert parent.status == "succeeded", parent.error
    still = Job.get(Job.parent == parent.id, Job.engine == "sdxl-instantid")
    ref = next(i for i in still.images if i["role"] == "reference")
    a = np.asarray(Image.open(ws / ref["path"]).convert("RGB"))
    b = np.asarray(Image.open(ws / job.outputs[1]["file"]).convert("RGB"))
    assert np.array_equal(a, b)


def test_design_needs_write_access_and_a_known_character(project_studio):
    st = project_studio
    write_project(st.settings.projects_dir, characters=CHARACTERS, scenes=SCENES, face=False)
    design = DesignService(st.service, EpisodeService(st.service).store)
    with pytest.raises(NotFound):
        design.design("test-ep", "nobody", LOCAL, count=1, params=TINY)
    with pytest.raises(ValidationError):
        design.design("test-ep", "hanli", LOCAL, count=9)
    design.access.set_owner("test-ep", Principal(user="alice"))
    with pytest.raises(NotFound):
        design.design("test-ep", "hanli", Principal(user="bob"), count=1, params=TINY)
    with pytest.raises(NotFound):
        design.pick("test-ep", "hanli", "x#0", Principal(user="bob"))
    assert Job.select().where(Job.user == "bob").count() == 0
