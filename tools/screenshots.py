"""README screenshots of each tab in zh-CN, from a real running studio with tiny models.

Starts the studio on a fresh workspace with a tiny random Wan2.1 T2V (tests/tiny_models.py),
makes one short job so the Queue and Gallery have something to show, and saves one PNG per
tab with headless Debian chromium (Playwright):

    python tools/screenshots.py [--out docs/screenshots] [--locale zh-CN]

Needs: playwright (pip) and chromium + fonts-noto-cjk (apt).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TABS = {"zh-CN": [("create", "创作"), ("projects", "项目"), ("queue", "队列"), ("gallery", "作品"),
                  ("settings", "设置")],
        "en-US": [("create", "Create"), ("projects", "Projects"), ("queue", "Queue"), ("gallery", "Gallery"),
                  ("settings", "Settings")]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--locale", default="zh-CN", choices=sorted(TABS))
    args = ap.parse_args()
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    from tests.e2e.proc import StudioProcess
    from tests.e2e.test_browser import ARGS, CHROMIUM
    from tests.tiny_models import build_tiny_wan_t2v

    tmp = Path(tempfile.mkdtemp())
    ws = tmp / "ws"
    (ws / "models").mkdir(parents=True)
    shutil.copytree(build_tiny_wan_t2v(tmp / "tiny-wan"), ws / "models" / "wan2.1-t2v-1.3b")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    proc = StudioProcess(ws, env={"XIANYING_SECRETS": str(tmp / "secrets.yaml")}).start()
    try:
        client = Client(proc.url, verbose=False)
        job = client.predict({"engine": "wan2.1-t2v-1.3b", "prompt": "韩立御剑飞行，云海翻腾，仙侠风格",
                              "params": {"width": 64, "height": 48, "num_frames": 9, "num_inference_steps": 4}},
                             api_name="/submit")
        deadline = time.monotonic() + 180
        while client.predict(job["task_id"], api_name="/status")["status"] not in ("succeeded", "failed") \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}, locale=args.locale).new_page()
            page.goto(proc.url + "/")
            page.wait_for_selector("#submit", timeout=60_000)
            for slug, name in TABS[args.locale]:
                page.get_by_role("tab", name=name, exact=True).click()
                if slug == "gallery":
                    page.locator("#gallery-refresh").click()
                page.wait_for_timeout(2000)  # the tab's own load event fills its tables
                path = out / f"{slug}-{args.locale}.png"
                page.screenshot(path=str(path), full_page=True)
                print(path)
            browser.close()
    finally:
        proc.stop()


if __name__ == "__main__":
    main()
