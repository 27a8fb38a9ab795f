"""Settings → Models → Download, in a real browser, against the loopback fake hub (set as the
studio's hf_endpoint mirror): the progress bar moves, the engine turns available without a
restart, and a job then runs on the downloaded weights. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.e2e.conftest import wait_status
from tests.e2e.proc import StudioProcess
from tests.e2e.test_browser import page  # noqa: F401  (the fixture)
from tests.local.fake_hub import FakeHub

WAN = "wan2.1-t2v-1.3b"
REPO = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
BIG = "transformer/diffusion_pytorch_model.safetensors"


@pytest.fixture
def hub():
    with FakeHub() as h:
        yield h


def test_download_from_settings_shows_progress_and_the_engine_becomes_usable(page, hub, tiny_wan_dir,  # noqa: F811
                                                                             tmp_path):
    from gradio_client import Client

    hub.add_folder(REPO, tiny_wan_dir)
    size = (tiny_wan_dir / BIG).stat().st_size
    gate = hub.hold(BIG, after=size // 3)  # the transfer pauses a third of the way in, so progress can be seen
    ws = tmp_path / "下载 ws"
    ws.mkdir()
    (ws / "config.yaml").write_text(yaml.safe_dump({"hf_endpoint": hub.url}), encoding="utf-8")
    studio = StudioProcess(ws, env={"XIANYING_SECRETS": str(tmp_path / "secrets.yaml"), "HF_HUB_OFFLINE": "0",
                                    "TRANSFORMERS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home"),
                                    "HF_TOKEN": ""}).start()
    try:
        page.goto(studio.url + "/")
        page.wait_for_selector("#prompt textarea", timeout=60_000)
        page.get_by_role("tab", name="设置").click()
        engines = page.locator("#engines-table")
        engines.locator("table").wait_for(timeout=30_000)
        assert "找不到权重" in engines.locator("tr", has_text=WAN).inner_text()
        page.get_by_role("button", name="下载", exact=True).click()

        line = page.locator("#model-downloads")
        page.wait_for_function("() => document.querySelector('#model-downloads').innerText.includes('█')",
                               timeout=30_000)  # the bar while the file is held mid-way
        text = line.inner_text()
        assert WAN in text and re.search(r"\d+%", text) and "文件" in text, text
        page.screenshot(path=str(tmp_path / "1-downloading.png"), full_page=True)
        gate.set()

        page.wait_for_function("() => document.querySelector('#model-downloads').innerText.includes('完成')",
                               timeout=60_000)
        page.wait_for_function(f"""() => [...document.querySelectorAll('#engines-table tr')]
            .some(r => r.innerText.includes('{WAN}') && r.innerText.includes('权重'))
            && ![...document.querySelectorAll('#engines-table tr')]
            .some(r => r.innerText.includes('{WAN}') && r.innerText.includes('找不到'))""", timeout=30_000)
        page.screenshot(path=str(tmp_path / "2-done.png"), full_page=True)
        assert not any(h.auth for h in hub.log)  # no token is ever sent to a mirror

        client = Client(studio.url, download_files=str(tmp_path / "dl"), verbose=False)
        job = client.predict({"engine": WAN, "prompt": "韩立御剑", "params": {
            "width": 32, "height": 32, "num_frames": 5, "num_inference_steps": 2, "seed": 1}}, api_name="/submit")
        assert wait_status(client, job["task_id"])["status"] == "succeeded"
    finally:
        gate.set()
        assert studio.stop() == 0, studio.log()
