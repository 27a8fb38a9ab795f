"""A real browser (Debian's chromium, headless, driven by Playwright): create a tiny Wan job,
watch it finish in the Queue tab, play it in the Gallery. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import shutil
import time

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium") and not shutil.os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        yield context.new_page()
        browser.close()


def set_number(page, label: str, value: int) -> None:
    advanced = page.locator("#advanced")
    if not advanced.locator(f"input[aria-label='number input for {label}']").is_visible():
        advanced.locator("button").first.click()  # the raw parameters live in the closed "advanced" section
    box = page.locator(f"#params-form input[aria-label='number input for {label}']")
    box.fill(str(value))
    box.press("Enter")


def test_create_queue_gallery_in_a_browser(page, studio_proc, tmp_path):
    page.goto(studio_proc.url + "/")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.locator("#prompt textarea").fill("韩立站在山巅，衣袂飘飘，仙侠风格")
    for label, value in (("宽度", 32), ("高度", 32), ("帧数", 9), ("步数", 3)):
        set_number(page, label, value)
    page.screenshot(path=str(tmp_path / "1-create.png"), full_page=True)
    page.locator("#submit").click()
    page.wait_for_selector("#submit-result", timeout=30_000)
    task_text = page.locator("#submit-result").inner_text()
    assert "已提交" in task_text

    page.get_by_role("tab", name="队列").click()
    row = page.locator("#job-table tr[data-status='succeeded']", has_text="韩立站在山巅")
    row.first.wait_for(timeout=90_000)
    page.screenshot(path=str(tmp_path / "2-queue.png"), full_page=True)

    page.get_by_role("tab", name="作品").click()
    thumb = page.locator("#gallery img").first
    thumb.wait_for(timeout=30_000)
    thumb.click()
    video = page.locator("#gallery-video video")
    video.wait_for(timeout=30_000)
    assert page.locator("#gallery-task textarea, #gallery-task input").first.input_value()
    assert video.evaluate("v => v.src").startswith("http")
    page.screenshot(path=str(tmp_path / "3-gallery.png"), full_page=True)


def test_human_controls_set_the_stored_size_and_frames(page, studio_proc, client):
    """9:16, the small size, 2 seconds and the draft preset → the job stored with Wan's numbers."""
    from app.ui import controls
    from engines.local.wan_t2v import WanT2VEngine

    page.goto(studio_proc.url + "/")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.locator("#prompt textarea").fill("竖屏：仙鹤掠过山门")
    page.locator("#aspect").get_by_text("9:16", exact=True).click()
    page.locator("#quality").get_by_text("低", exact=True).click()
    seconds = page.locator("#duration input")
    seconds.fill("2")
    seconds.press("Enter")
    page.locator("#preset").get_by_text("草稿（快）", exact=True).click()
    want = controls.human_params(WanT2VEngine, "9:16", "low", 2, "draft")
    assert want["width"] < want["height"] and (want["num_frames"] - 1) % 4 == 0
    frames = page.locator("#params-form input[aria-label='number input for 帧数']")
    page.wait_for_function("([el, v]) => el.value == v", arg=[frames.element_handle(), str(want["num_frames"])],
                           timeout=15_000)
    page.wait_for_function("el => el.innerText.includes('首次运行')", arg=page.locator("#estimate").element_handle(),
                           timeout=15_000)  # no finished job at this size on this machine yet
    page.locator("#submit").click()
    page.wait_for_selector("#submit-result", timeout=30_000)
    task_id = page.locator("#submit-result code").inner_text().strip()
    stored = client.predict(task_id, api_name="/status")["params"]
    client.predict(task_id, api_name="/cancel")  # only the stored numbers matter here
    assert (stored["width"], stored["height"], stored["num_frames"], stored["num_inference_steps"]) == \
        (want["width"], want["height"], want["num_frames"], want["num_inference_steps"])


def test_cancel_from_the_queue_row(page, studio_proc, client):
    """The row's own Cancel button cancels that job; the card shows it in the page's language."""
    # the first job must still run when the test cancels it at the end: at 32x32x9 it finished first
    # in a CI run; 320x320x81 takes about 2 minutes on this machine
    slow = {"engine": "wan2.1-t2v-1.3b", "prompt": "长任务：云海", "params": {"width": 320, "height": 320,
                                                                         "num_frames": 81, "num_inference_steps": 200}}
    first = client.predict(slow, api_name="/submit")["task_id"]
    second = client.predict({**slow, "prompt": "排队任务：取消我"}, api_name="/submit")["task_id"]
    page.goto(studio_proc.url + "/")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.get_by_role("tab", name="队列").click()
    button = page.locator(f"#job-table tr[data-task='{second}'] button[data-act='cancel']")
    button.wait_for(timeout=30_000)
    assert button.inner_text() == "取消"
    button.click(timeout=10_000)  # once: the hidden box's own change carries the action (no lost click)
    page.locator(f"#job-table tr[data-task='{second}'][data-status='cancelled']").wait_for(timeout=60_000)
    assert client.predict(second, api_name="/status")["status"] == "cancelled"
    # the same action twice in a row on the same row runs twice (the box's value differs each time)
    rerun = page.locator(f"#job-table tr[data-task='{second}'] button[data-act='rerun']")
    reruns = []
    for n in (1, 2):
        rerun.click(timeout=10_000)
        deadline = time.monotonic() + 30
        while len(reruns) < n and time.monotonic() < deadline:
            time.sleep(0.2)
            reruns = [t["task_id"] for t in client.predict({"limit": 20}, api_name="/tasks") if t["rerun_of"] == second]
        assert len(reruns) == n, reruns
    for task in reruns:  # queued behind the slow first job
        client.predict(task, api_name="/cancel")
    client.predict(first, api_name="/cancel")
    page.locator(f"#job-table tr[data-task='{first}'][data-status='cancelled']").wait_for(timeout=60_000)


def test_a_running_local_job_shows_a_preview_that_changes(page, studio_proc, client):
    # a large enough frame that the job still runs when the page has shown two previews: at 64x64x33
    # it finished in 6 s on a quiet machine, before the table could show a second one (320x320x81:
    # about 2 minutes, a preview every ~12 s; the test cancels it once the preview changed)
    slow = {"engine": "wan2.1-t2v-1.3b", "prompt": "预览：山门云海",
            "params": {"width": 320, "height": 320, "num_frames": 81, "num_inference_steps": 200}}
    task = client.predict(slow, api_name="/submit")["task_id"]
    try:
        page.goto(studio_proc.url + "/")
        page.wait_for_selector("#prompt textarea", timeout=60_000)
        page.get_by_role("tab", name="队列").click()
        preview = page.locator(f"#job-table tr[data-task='{task}'] img.xy-preview")
        preview.wait_for(timeout=90_000)
        first = preview.get_attribute("src")
        page.wait_for_function(
            "([sel, src]) => { const im = document.querySelector(sel); return im && im.src !== src; }",
            arg=[f"#job-table tr[data-task='{task}'] img.xy-preview", first], timeout=90_000)
    finally:
        client.predict(task, api_name="/cancel")
