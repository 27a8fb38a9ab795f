"""One language at a time: every tab, in zh-CN and in en-US, shows no visible text in the other
language (ids, file names, code and the brand line excepted). The Projects tab is visited with the
built-in sample project open, each of its sub-tabs and closed accordions too; the sample's own words
(titles, narration, names: bilingual on purpose) are the user's content and are left out.

Debian's chromium, headless, driven by Playwright (see test_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_browser import ARGS, CHROMIUM

TABS = {"zh-CN": ["创作", "队列", "作品", "设置"], "en-US": ["Create", "Queue", "Gallery", "Settings"]}
PROJECTS = {"zh-CN": "项目", "en-US": "Projects"}
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
ALLOW_CJK = ("仙影",)  # the brand line: "仙影 · Xianying Studio" in both languages
# names (products, formats, acronyms) that stay as they are in Chinese text
ALLOW_ASCII = {"Xianying", "Studio", "LoRA", "Wan", "SDXL", "InstantID", "Stable", "Video", "Diffusion", "XT",
               "CogVideoX", "Vidu", "Seedance", "Kokoro", "Hugging", "Face", "JSON", "PyTorch", "sdpa", "flash",
               "sage", "xformers", "wav", "mp3", "Hailuo", "Kling", "OS", "GV", "Hunyuan", "CFG", "diffusers",
               "IdentityNet", "ControlNet", "TENCENTCLOUD_VOD_SUBAPPID", "Gradio", "API", "AI", "VAE", "GPU",
               "GB", "MB", "Qwen", "TTS", "WxH", "W", "H"}

SAMPLE = Path(__file__).resolve().parents[2] / "profiles" / "samples" / "xianxia-sample"
# Projects → its sub-tabs (by elem_id: the names are the language under test) and the closed accordions to open
PROJECT_PARTS = [("", ["project-manage"]), ("tab-storyboard", ["sb-design-panel"]), ("tab-project-settings", []),
                 ("tab-characters", ["char-design-panel"]), ("tab-scenes", []), ("tab-render", []),
                 ("tab-draft", [])]
BROKEN = ("[object Object]", "__i18n__", "translation_metadata")  # an I18n key the page did not translate
BOTH = re.compile(r"[\u3400-\u9fff][）)]?\s+/\s+[A-Za-z]{2,}")  # "项目 / Project": both languages in one text


def sample_texts() -> tuple[str, ...]:
    """The sample project's own words (free text, and the ids it gives its characters and scenes, as the
    scenes table lists them): the user's, not the UI's. Longest first."""
    project = yaml.safe_load((SAMPLE / "project.yaml").read_text(encoding="utf-8"))
    chars = yaml.safe_load((SAMPLE / "characters.yaml").read_text(encoding="utf-8"))["characters"]
    scenes = yaml.safe_load((SAMPLE / "scenes.yaml").read_text(encoding="utf-8"))["scenes"]
    found = [project.get("title"), project.get("description"), project.get("negative_prompt")]
    for cid, c in chars.items():
        found += [cid, c.get("name"), c.get("prompt"), c.get("description")]
    for s in scenes:
        found += [s.get(k) for k in ("id", "title", "prompt", "narration", "camera", "motion")]
        found += [line.get("text") for line in s.get("lines") or []]
    return tuple(sorted({f.strip() for f in found if isinstance(f, str) and f.strip()}, key=len, reverse=True))


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
        if any(b in text for b in BROKEN):
            bad.append(text)
            continue
        for path in paths:
            text = text.replace(path, "")
        text = re.sub(r"https?://\S+", "", text)  # a URL (an example server address) is no language
        if locale.startswith("en"):
            rest = text
            for ok in ALLOW_CJK:
                rest = rest.replace(ok, "")
            if CJK.search(rest):
                bad.append(text)
        elif BOTH.search(text):
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
        found.update(visit_projects(page, locale, tmp_path, (str(studio_proc.workspace), *sample_texts())))
        browser.close()
    assert not found, f"{locale}: text in the other language: {found}"


def visit_projects(page, locale: str, tmp_path, skip: tuple[str, ...]) -> dict:
    """The Projects tab with the sample open: the tab, each sub-tab, each closed accordion opened."""
    found = {}
    page.get_by_role("tab", name=PROJECTS[locale], exact=True).click()
    page.locator("#storyboard .xy-sb-card").first.wait_for(timeout=30_000)  # the sample project is open
    page.wait_for_timeout(1000)
    for sub, accordions in PROJECT_PARTS:
        if sub:
            page.locator(f"#{sub}-button").click()
            page.wait_for_timeout(1200)  # the sub-tab's fields are filled by the project's load
        for acc in accordions:
            page.locator(f"#{acc} button").first.click()
            page.wait_for_timeout(600)
        name = f"{PROJECTS[locale]}/{sub or 'top'}"
        page.screenshot(path=str(tmp_path / f"{locale}-projects-{sub or 'top'}.png"), full_page=True)
        bad = wrong_language(page.evaluate(COLLECT), locale, skip)
        if bad:
            found[name] = bad
    return found


def test_the_checker_can_fail():
    assert wrong_language(["Generate", "宽度", "Wan2.1 T2V 1.3B", "sdxl-instantid"], "zh-CN") == ["Generate"]
    assert wrong_language(["创作", "仙影 · Xianying Studio", "Engine"], "en-US") == ["创作"]
    assert wrong_language(["[object Object]", "保存"], "en-US") == ["[object Object]", "保存"]
    assert wrong_language(["项目 / Project", "（无 / none）", "路径 a/b", "宽 / 高"], "zh-CN") == ["项目 / Project",
                                                                                              "（无 / none）"]
    assert wrong_language(["沙滩 On the sand · 4s"], "zh-CN", sample_texts()) == []
