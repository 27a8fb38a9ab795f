"""One language at a time: every tab, in zh-CN and in en-US, shows no visible text in the other
language (ids, file names, code and the brand line excepted).

Debian's chromium, headless, driven by Playwright (see test_browser.py)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_browser import ARGS, CHROMIUM

TABS = {"zh-CN": ["创作", "队列", "作品", "设置"], "en-US": ["Create", "Queue", "Gallery", "Settings"]}
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
ALLOW_CJK = ("仙影",)  # the brand line: "仙影 · Xianying Studio" in both languages
# names (products, formats, acronyms) that stay as they are in Chinese text
ALLOW_ASCII = {"Xianying", "Studio", "LoRA", "Wan", "SDXL", "InstantID", "Stable", "Video", "Diffusion", "XT",
               "CogVideoX", "Vidu", "Seedance", "Kokoro", "Hugging", "Face", "JSON", "PyTorch", "sdpa", "flash",
               "sage", "xformers", "wav", "mp3", "Hailuo", "Kling", "OS", "GV", "Hunyuan", "CFG", "diffusers",
               "IdentityNet", "ControlNet", "TENCENTCLOUD_VOD_SUBAPPID", "Gradio", "API", "AI", "VAE", "GPU",
               "GB", "MB", "Qwen", "TTS", "WxH", "W", "H"}

# Visible text nodes (and placeholders), outside code, the footer and the user's own inputs.
COLLECT = """() => {
  const out = [];
  const skip = el => el.closest('code, pre, footer, textarea, input, script, style, svg, .xy-user, .gallery');
  const walker = document.createTreeWalker(document.querySelector('gradio-app') || document.body,
                                           NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement, text = node.textContent.trim();
    if (!text || !el || skip(el) || !el.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
    out.push(text);
  }
  for (const el of document.querySelectorAll('textarea[placeholder], input[placeholder]'))
    if (el.checkVisibility() && el.placeholder.trim()) out.push(el.placeholder.trim());
  return out;
}"""


def wrong_language(texts: list[str], locale: str, paths: tuple[str, ...] = ()) -> list[str]:
    """The texts in the other language; ``paths`` (file names, the workspace) are left out first."""
    bad = []
    for text in texts:
        for path in paths:
            text = text.replace(path, "")
        text = re.sub(r"https?://\S+", "", text)  # a URL (an example server address) is no language
        if locale.startswith("en"):
            rest = text
            for ok in ALLOW_CJK:
                rest = rest.replace(ok, "")
            if CJK.search(rest):
                bad.append(text)
        elif not CJK.search(text):
            words = [w for w in re.split(r"[\s,;:()\[\]·|/…—–+=%!?\"'“”`]+", text) if w]
            prose = [w for w in words if re.fullmatch(r"[A-Za-z]{2,}", w) and w not in ALLOW_ASCII
                     and not (w.isupper() and len(w) <= 5)]
            if prose:
                bad.append(text)
    return bad


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_tab_speaks_one_language(studio_proc, tmp_path, locale):
    sync_api = pytest.importorskip("playwright.sync_api")
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}, locale=locale).new_page()
        page.goto(studio_proc.url + "/")
        page.wait_for_selector("#prompt textarea", timeout=60_000)
        page.wait_for_selector("#submit", timeout=30_000)
        found = {}
        for n, tab in enumerate(TABS[locale]):
            page.get_by_role("tab", name=tab, exact=True).click()
            if n == 0:
                page.locator("#advanced button").first.click()  # the raw parameters too
                page.wait_for_selector("#advanced label", timeout=10_000)
            else:
                page.wait_for_timeout(1500)  # the tab's own load event fills its tables
            page.screenshot(path=str(tmp_path / f"{locale}-{n}.png"), full_page=True)
            bad = wrong_language(page.evaluate(COLLECT), locale, (str(studio_proc.workspace),))
            if bad:
                found[tab] = bad
        browser.close()
    assert not found, f"{locale}: text in the other language: {found}"


def test_the_checker_can_fail():
    assert wrong_language(["Generate", "宽度", "Wan2.1 T2V 1.3B", "sdxl-instantid"], "zh-CN") == ["Generate"]
    assert wrong_language(["创作", "仙影 · Xianying Studio", "Engine"], "en-US") == ["创作"]
