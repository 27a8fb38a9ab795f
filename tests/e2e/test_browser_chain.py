"""Still → video from the Gallery, in a real browser: a batch of two SDXL stills, the second one
sent to SVD with "make a video from this still"; the video job references that exact output
(``job:<task_id>#1``), not a copy. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_status
from tests.e2e.proc import StudioProcess
from tests.e2e.test_browser import page, set_number  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def chain_studio(tmp_path_factory):
    from tests.tiny_models import build_tiny_sdxl, build_tiny_svd

    ws = tmp_path_factory.mktemp("chain") / "作品 ws"
    build_tiny_sdxl(ws / "models" / "sdxl")
    build_tiny_svd(ws / "models" / "svd-xt")
    proc = StudioProcess(ws, env={"XIANYING_SECRETS": str(ws.parent / "secrets.yaml")}).start()
    yield proc
    assert proc.stop() == 0, proc.log()


def test_gallery_still_becomes_the_first_frame_of_a_video(page, chain_studio, tmp_path):  # noqa: F811
    from gradio_client import Client

    client = Client(chain_studio.url, download_files=str(tmp_path / "dl"), verbose=False)
    still = client.predict({"engine": "sdxl", "prompt": "南宫婉立于竹林",
                            "params": {"width": 64, "height": 64, "num_inference_steps": 2, "num_images": 2,
                                       "seed": 3}}, api_name="/submit")
    done = wait_status(client, still["task_id"])
    assert done["status"] == "succeeded" and len(done["outputs"]) == 2, done

    page.goto(chain_studio.url + "/")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.get_by_role("tab", name="作品").click()
    tile = page.locator("#gallery button", has_text="#2").first
    tile.wait_for(timeout=30_000)
    tile.click()
    page.locator("#gallery-image img").wait_for(timeout=30_000)
    button = page.locator("#gallery-animate-btn")
    button.wait_for(timeout=10_000)
    # the default is the first available i2v engine: SVD here (the cloud ones have no keys)
    assert "Stable Video Diffusion" in page.locator("#gallery-i2v-engine input").first.input_value()
    page.screenshot(path=str(tmp_path / "1-gallery-still.png"), full_page=True)
    button.click()

    page.locator("#input-image img").wait_for(timeout=30_000)  # Create is open with the still in place
    assert still["task_id"] in page.locator("#image-from-job").inner_text()
    page.locator("#params-form #advanced").wait_for(timeout=30_000)  # SVD's form (raw fields: "advanced")
    page.locator("#params-form").get_by_text("运动幅度", exact=True).first.wait_for(timeout=30_000)  # SVD only
    for label, value in (("宽度", 64), ("高度", 64), ("帧数", 3), ("步数", 2), ("每次解码帧数", 2)):
        set_number(page, label, value)
    page.screenshot(path=str(tmp_path / "2-create-from-still.png"), full_page=True)
    page.locator("#submit").click()
    page.wait_for_selector("#submit-result", timeout=30_000)
    task_id = next(w.strip('",{}') for w in page.locator("#submit-result").inner_text().split()
                   if len(w.strip('",{}')) == 32)

    video = wait_status(client, task_id)
    assert video["status"] == "succeeded", video
    assert video["engine"] == "svd-xt" and video["task"] == "i2v"
    assert video["images"] == [{"role": "first_frame", "file": done["outputs"][1]["file"]}]
    assert video["outputs"][0]["frames"] == 3
