"""From a chapter to a draft: the offline splitter on a real-length chapter (written for this test),
and drafts added to projects without overwriting anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from profiles.draft import MAX_SCENE_CHARS, chunks, find_names, paragraphs, split_text

CHAPTER = (Path(__file__).parent / "data" / "chapter_zh.txt").read_text(encoding="utf-8")
QUOTE = re.compile(r"“([^”]*)”")
SPEECH = ("说道", "笑道", "问道", "叹道", "低声道", "说", "道", "问")


def content(text: str) -> str:
    """Letters, digits and CJK only: what is said, not how it is punctuated."""
    return re.sub(r"[^\w]", "", text)


def spoken_order(draft) -> str:
    return "".join(content(s.narration) + "".join(content(ln.text) for ln in s.lines) for s in draft.scenes)


def gaps(source: str, said: str) -> list[str]:
    """The runs of ``source`` left out of ``said``; ``said`` may add nothing and reorder nothing."""
    from difflib import SequenceMatcher

    ops = SequenceMatcher(None, source, said, autojunk=False).get_opcodes()
    added = [said[j1:j2] for op, i1, i2, j1, j2 in ops if op in ("insert", "replace")]
    assert not added, f"the draft says what the text does not: {added[:5]}"
    return [source[i1:i2] for op, i1, i2, j1, j2 in ops if op == "delete"]


def test_the_chapter_is_real_length():
    assert 4500 <= len(CHAPTER) <= 6000
    assert len(paragraphs(CHAPTER)) > 50


def test_every_sentence_is_kept_exactly_once_in_order():
    draft, _ = split_text(CHAPTER)
    names = {c.name for c in draft.characters}
    source, said = content(CHAPTER), spoken_order(draft)
    left_out = gaps(source, said)
    # only speech tags are left out ("沈墨说道", "老周叹道"): a name and a speech verb, nothing else
    for gap in left_out:
        assert len(gap) <= 6 and gap.endswith(SPEECH) and any(gap.startswith(n) for n in names), gap
    assert len(said) >= 0.97 * len(source)
    # every sentence is there exactly as often as in the text (narration, or a line when it is a quote)
    pieces = [content(x) for p in paragraphs(CHAPTER) for x in re.split(r"(?<=[。！？])", p) if not re.search("[“”]", x)]
    for sentence in {p for p in pieces if len(p) >= 6}:
        assert said.count(sentence) == source.count(sentence), sentence
    for quote in {content(q) for q in QUOTE.findall(CHAPTER)}:
        assert said.count(quote) == source.count(quote), quote


def test_scenes_have_sensible_lengths():
    draft, _ = split_text(CHAPTER)
    assert 30 <= len(draft.scenes) <= 110
    for scene in draft.scenes:
        size = len(scene.narration) + sum(len(ln.text) for ln in scene.lines)
        assert 0 < size <= MAX_SCENE_CHARS + 60
        assert 2 <= scene.duration <= 60
        assert scene.prompt.strip()
    small = [s for s in draft.scenes if len(s.narration) + sum(len(ln.text) for ln in s.lines) < 12]
    assert len(small) <= len(draft.scenes) // 4
    # reading time: narration at ~4.5 characters a second
    long_one = max(draft.scenes, key=lambda s: len(s.narration))
    assert long_one.duration == pytest.approx(len(long_one.narration) / 4.5 + sum(
        len(ln.text) / 4.5 + 0.2 for ln in long_one.lines), abs=0.2)


def test_names_become_characters_and_speakers():
    draft, _ = split_text(CHAPTER)
    by_name = {c.name: c for c in draft.characters}
    assert {"沈墨", "苏晚晴", "老周"} <= set(by_name)
    assert by_name["苏晚晴"].voice == "female" and by_name["沈墨"].voice == "male"
    said = {(ln.character, ln.text) for s in draft.scenes for ln in s.lines}
    assert (by_name["沈墨"].id, "老人家，今夜还能过江吗？") in said
    assert (by_name["老周"].id, "你们两个，都是去青石观的吧？") in said
    assert (by_name["苏晚晴"].id, "别出声。") in said
    # a line's speaker is on screen
    for scene in draft.scenes:
        assert {ln.character for ln in scene.lines} <= set(scene.characters)
    assert [n for n, _ in find_names("Anna said hello. \"Come,\" said Tom. Anna said no. Tom asked why.")] \
        == ["Anna", "Tom"]


@pytest.mark.parametrize("scenes", [40, 60, 100])
def test_the_scene_count_asked_for_is_kept(scenes):
    draft, warnings = split_text(CHAPTER, scenes=scenes)
    assert len(draft.scenes) == scenes and not any("asked for" in w for w in warnings)
    assert spoken_order(draft) == spoken_order(split_text(CHAPTER)[0])  # the same text, in the same order
    small, warnings = split_text(CHAPTER, scenes=5)  # too few for the text: more, and a warning that says why
    assert len(small.scenes) > 5 and any("5 asked for" in w and "dialogue closes a scene" in w for w in warnings)
    many, warnings = split_text("夜色如墨。韩立站在山门前。他御剑而起。", scenes=6)  # three sentences
    assert len(many.scenes) == 3 and any("6 asked for" in w and "only 3" in w for w in warnings)


def test_a_length_in_seconds_sets_durations_and_warns_when_the_text_is_longer():
    draft, warnings = split_text(CHAPTER, seconds=120)
    assert sum(s.duration for s in draft.scenes) == pytest.approx(120, rel=0.1)
    assert any("longer than the 120 s" in w for w in warnings)
    assert spoken_order(draft) == spoken_order(split_text(CHAPTER, seconds=120)[0])  # same text, same draft


def test_tags_prompts_are_english():
    draft, warnings = split_text(CHAPTER, prompts="tags")
    assert all(s.prompt.isascii() for s in draft.scenes)
    assert any("moonlight" in s.prompt or "river" in s.prompt for s in draft.scenes)
    assert any("rough English tags" in w for w in warnings)


def test_long_texts_are_chunked_at_paragraphs_and_drafted_without_loss():
    long = "\n".join([CHAPTER] * 6)  # ~28,000 characters
    parts = chunks(long, 6000)
    assert len(parts) >= 5 and all(len(p) <= 6000 for p in parts)
    assert "\n".join(parts).split("\n") == paragraphs(long)
    draft, warnings = split_text(long)
    assert len(draft.scenes) <= 200
    source, said = content(long), spoken_order(draft)
    assert len(said) >= 0.97 * len(source)
    pieces = [content(x) for p in paragraphs(long) for x in re.split(r"(?<=[。！？])", p) if not re.search("[“”]", x)]
    for sentence in {p for p in pieces if len(p) >= 6}:
        assert said.count(sentence) == source.count(sentence), sentence
    assert any("long for 200 scenes" in w for w in warnings)


# --- into projects ---------------------------------------------------------------------------------
@pytest.fixture
def drafts(workspace):
    from app.db import db
    from app.drafts import DraftService
    from app.episodes import EpisodeService
    from app.settings import load_settings
    from app.studio import Studio

    st = Studio(load_settings(workspace))
    st.start()
    with db.connection_context():
        yield DraftService(st.service, EpisodeService(st.service).access)
    st.stop()


def snapshot(store, pid) -> tuple[dict, dict]:
    p = store.get(pid)
    return ({s.id: s.model_dump(mode="json") for s in p.scenes},
            {c: ch.model_dump(mode="json") for c, ch in p.characters.items()})


def test_a_draft_becomes_a_new_project_of_the_caller(drafts):
    from app.access import Principal

    alice = Principal(user="alice")
    out = drafts.draft({"text": CHAPTER, "title": "Rain ferry 雨夜渡口", "scenes": 20}, alice, source="ui")
    pid = out["project"]
    assert drafts.access.owner(pid) == "alice"
    project = drafts.store.get(pid)
    assert [s.id for s in project.scenes] == out["scenes_added"] and len(project.scenes) >= 14
    assert set(project.characters) == set(out["characters_added"])
    assert project.config.title == "Rain ferry 雨夜渡口"
    women = [c for c in project.characters.values() if c.name == "苏晚晴"]
    assert women and women[0].voice.voice == "female" and women[0].voice.engine == "local-tts"


def test_drafting_into_a_project_adds_after_a_scene_and_overwrites_nothing(drafts):
    from app.access import Principal

    alice = Principal(user="alice")
    pid = drafts.access.create("ferry", "Ferry", alice).id
    store = drafts.store
    store.upsert_character(pid, "shenmo", {"name": "沈墨", "prompt": "young healer, grey robe",
                                           "voice": {"engine": "local-tts", "voice": "male", "speed": 1.1}})
    for sid in ("s001", "s002", "s003"):
        store.upsert_scene(pid, {"id": sid, "prompt": f"hand-written {sid}", "narration": f"原有的{sid}。",
                                 "characters": ["shenmo"]})
    scenes_before, chars_before = snapshot(store, pid)
    out = drafts.draft({"text": CHAPTER, "project": pid, "after_scene": "s001", "scenes": 10}, alice)
    scenes_after, chars_after = snapshot(store, pid)
    order = [s.id for s in store.get(pid).scenes]
    assert order == ["s001", *out["scenes_added"], "s002", "s003"]
    assert not set(out["scenes_added"]) & set(scenes_before)
    for sid, scene in scenes_before.items():
        assert scenes_after[sid] == scene
    for cid, char in chars_before.items():
        assert chars_after[cid] == char  # 沈墨 already there: kept as written, not added again
    assert "shenmo" not in out["characters_added"]
    assert {c["name"] for c in chars_after.values()} >= {"沈墨", "苏晚晴", "老周"}
    assert sum(1 for c in chars_after.values() if c["name"] == "沈墨") == 1
    said = [ln for sid in out["scenes_added"] for ln in scenes_after[sid]["lines"]]
    assert any(ln["character"] == "shenmo" for ln in said)  # the known character speaks under its own id
    # a second draft appends at the end, again without touching anything
    again = drafts.draft({"text": "第二天早上，雨停了。沈墨推开窗。", "project": pid}, alice)
    final = [s.id for s in store.get(pid).scenes]
    assert final[: len(order)] == order and final[len(order):] == again["scenes_added"]


def test_bad_requests_are_clear(drafts):
    from app.access import Principal
    from core.errors import NotFound, ValidationError

    alice = Principal(user="alice")
    with pytest.raises(ValidationError):
        drafts.draft({"text": ""}, alice)
    with pytest.raises(ValidationError):
        drafts.draft({"text": "x", "seconds": float("inf")}, alice)
    with pytest.raises(ValidationError):
        drafts.draft({"text": "x" * 40_001}, alice)
    with pytest.raises(ValidationError, match="unknown parameter"):
        drafts.draft({"text": "x", "overwrite": True}, alice)
    pid = drafts.access.create("mine", "Mine", alice).id
    with pytest.raises(NotFound, match="no scene"):
        drafts.draft({"text": "沈墨走了。", "project": pid, "after_scene": "nope"}, alice)
    with pytest.raises(ValidationError, match="cannot draft"):
        drafts.draft({"text": "沈墨走了。", "engine": "wan2.1-t2v-1.3b"}, alice)


def test_an_llm_draft_runs_as_a_script_job(drafts, monkeypatch):
    from app.access import Principal
    from tests.cloud.fake_chat import API_KEY, FakeChat

    with FakeChat(prefix="/api/v3") as chat:
        monkeypatch.setenv("ARK_API_KEY", API_KEY)
        monkeypatch.setenv("ARK_BASE_URL", chat.url + "/api/v3")
        alice = Principal(user="alice")
        chat.script({"draft": {"title": "渡口", "characters": [
            {"id": "shen-mo", "name": "沈墨", "description": "young healer", "prompt": "young man, grey robe",
             "voice": "male"}], "scenes": [
            {"title": "渡口", "prompt": "a young man with a medicine box on stone steps by a river at night, rain",
             "camera": "wide shot", "motion": "rain falls", "duration": 6, "narration": "入秋以后，雨没有停过。",
             "characters": ["shen-mo"], "lines": [{"character": "shen-mo", "text": "今夜能过江吗？"}]}]}})
        out = drafts.draft({"text": CHAPTER[:800], "engine": "doubao", "seconds": 30}, alice, wait_s=60)
        job = drafts.service.row(out["task_id"])
        assert job.engine == "ark-script" and job.user == "alice" and job.status == "succeeded"
        assert job.params["seconds"] == 30 and job.params["prompts"] == "natural" and job.params["style"] == "xianxia"
        project = drafts.store.get(out["project"])
        assert project.scenes[0].lines[0].character == "shen-mo" and project.scenes[0].duration == 6
        assert project.characters["shen-mo"].prompt == "young man, grey robe"
        sent = chat.bodies[0]
        assert sent["model"] == "doubao-seed-1-6-250615" and sent["thinking"] == {"type": "disabled"}
        assert "30 seconds" in sent["messages"][1]["content"] or "seconds" in sent["messages"][1]["content"]
        assert json.dumps(sent["response_format"]["json_schema"]["schema"])


def test_a_slow_llm_draft_answers_with_its_task_and_is_added_later(drafts, monkeypatch):
    from app.access import Principal
    from core.errors import NotFound, ValidationError
    from tests.cloud.fake_chat import API_KEY, FakeChat

    with FakeChat(prefix="/api/paas/v4") as chat:
        monkeypatch.setenv("ZHIPUAI_API_KEY", API_KEY)
        monkeypatch.setenv("ZHIPUAI_BASE_URL", chat.url + "/api/paas/v4")
        chat.latency = 1.0
        alice = Principal(user="alice")
        pid = drafts.access.create("slow", "Slow", alice).id
        first = drafts.draft({"text": "沈墨推开窗。\n雨停了。", "engine": "glm", "project": pid, "wait": 0}, alice)
        assert first["project"] is None and first["status"] in ("queued", "running") and first["task_id"]
        assert drafts.store.get(pid).scenes == []
        from tests.conftest import wait_for

        wait_for(lambda: drafts.service.row(first["task_id"]).status == "succeeded", timeout=60)
        with pytest.raises(NotFound):  # someone else's task is not theirs to add
            drafts.draft({"task_id": first["task_id"]}, Principal(user="bob"))
        with pytest.raises(ValidationError, match="either text"):
            drafts.draft({"task_id": first["task_id"], "text": "x"}, alice)
        done = drafts.draft({"task_id": first["task_id"], "project": pid}, alice)
        assert done["status"] == "done" and len(done["scenes_added"]) == 2
        assert [s.narration for s in drafts.store.get(pid).scenes] == ["沈墨推开窗。", "雨停了。"]
        assert chat.bodies[0]["model"] == "glm-4.5-air" and chat.bodies[0]["thinking"] == {"type": "disabled"}
