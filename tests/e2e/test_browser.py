"""A real browser (Debian's chromium, headless, driven by Playwright): create a tiny Wan job,
watch it finish in the Queue tab, play it in the Gallery. Screenshots go to the test's tmp dir."""

from __future__ import annotations

import shutil

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
    box = page.locator(f"#params-form input[aria-label='number input for {label}']")
    box.fill(str(value))
    box.press("Enter")


def test_create_queue_gallery_in_a_browser(page, studio_proc, tmp_path):
    page.goto(studio_proc.url + "/")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.locator("#prompt textarea").fill("韩立站在山巅，衣袂飘飘，仙侠风格")
    for label, value in (("width", 32), ("height", 32), ("num_frames", 9), ("num_inference_steps", 3)):
        set_number(page, label, value)
    page.screenshot(path=str(tmp_path / "1-create.png"), full_page=True)
    page.locator("#submit").click()
    page.wait_for_selector("#submit-result", timeout=30_000)
    task_text = page.locator("#submit-result").inner_text()
    assert "task_id" in task_text

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
