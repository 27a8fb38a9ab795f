"""Local engines end to end through the job service and the queue: still → video chaining,
a warm second job, and a cancel that leaves no files."""

from __future__ import annotations

import pytest

from tests.conftest import install_weights, wait_for
from app.access import LOCAL, Principal  # noqa: F401


@pytest.fixture
def local_studio(studio, tiny_sdxl_dir, tiny_svd_dir):
    ws = studio.settings.workspace
    install_weights(ws, "sdxl", tiny_sdxl_dir)
    install_weights(ws, "svd-xt", tiny_svd_dir)
    return studio


def finished(studio, job_id):
    def check():
        job = studio.service.get(job_id, LOCAL)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return wait_for(check, timeout=120)


SDXL = {"engine": "sdxl", "prompt": "a jade palace above the clouds",
        "params": {"width": 64, "height": 80, "num_inference_steps": 2, "seed": 5}}


def file_objects(value) -> list:
    """The dicts in an API answer that gradio_client would try to download as files."""
    from gradio_client.utils import is_file_obj

    if is_file_obj(value):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [hit for item in items for hit in file_objects(item)]


def test_still_to_video_by_task_id(local_studio):
    from core import media

    st = local_studio
    still = finished(st, st.service.submit(SDXL, LOCAL).id)
    assert still.status == "succeeded", still.error
    assert still.outputs[0]["kind"] == "image" and (still.outputs[0]["width"], still.outputs[0]["height"]) == (64, 80)
    clip = finished(st, st.service.submit({
        "engine": "svd-xt", "image": f"job:{still.id}",
        "params": {"width": 64, "height": 80, "num_frames": 3, "num_inference_steps": 2, "decode_chunk_size": 2,
                   "fps": 6, "seed": 1}}, LOCAL).id)
    assert clip.status == "succeeded", clip.error
    assert clip.task == "i2v" and clip.images[0]["path"] == still.outputs[0]["file"]
    shown = st.service.status_dict(clip)  # what /status answers: nothing gradio_client would fetch as a file
    assert shown["images"] == [{"role": "first_frame", "file": still.outputs[0]["file"]}]
    assert not file_objects(shown)
    info = media.probe(st.settings.workspace / clip.outputs[0]["file"])
    assert (info["width"], info["height"], info["frames"]) == (64, 80, 3)
    assert (st.settings.workspace / clip.output_dir / "job.json").exists()


def test_second_job_on_a_model_loads_nothing(local_studio):
    st = local_studio
    for seed in (1, 2):
        job = finished(st, st.service.submit({**SDXL, "params": {**SDXL["params"], "seed": seed}}, LOCAL).id)
        assert job.status == "succeeded", job.error
    assert st.cache.loads == 1
    assert [k[0] for k in st.cache.keys()] == ["sdxl"]


def test_cancel_running_job_leaves_no_files(local_studio):
    st = local_studio
    job = st.service.submit({**SDXL, "params": {**SDXL["params"], "num_inference_steps": 150}}, LOCAL)
    wait_for(lambda: st.service.get(job.id, LOCAL).progress > 0, timeout=60, interval=0.01)
    st.service.cancel(job.id, LOCAL)
    done = finished(st, job.id)
    assert done.status == "cancelled" and done.outputs == [] and done.output_dir is None
    assert done.progress < 100
    wait_for(lambda: not (st.settings.staging_dir / job.id).exists(), timeout=10)  # (removed just after the row)
    assert not list(st.settings.outputs_dir.rglob(f"*{job.id}*"))


def test_a_batch_still_is_picked_by_index_and_a_wrong_index_is_explained(local_studio):
    from core.errors import ValidationError

    st = local_studio
    batch = finished(st, st.service.submit({**SDXL, "params": {**SDXL["params"], "num_images": 2}}, LOCAL).id)
    assert batch.status == "succeeded" and len(batch.outputs) == 2
    assert st.service.image_of_job(f"{batch.id}#1", LOCAL) == st.settings.workspace / batch.outputs[1]["file"]
    assert st.service.image_of_job(batch.id, LOCAL) == st.settings.workspace / batch.outputs[0]["file"]
    for bad in (f"job:{batch.id}#2", f"job:{batch.id}#x"):
        with pytest.raises(ValidationError) as err:
            st.service.submit({"engine": "svd-xt", "image": bad, "params": {"num_frames": 2}}, LOCAL)
        assert "has no output" in err.value.en and "没有第" in err.value.zh
