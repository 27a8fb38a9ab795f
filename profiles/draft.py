"""Drafting without an LLM: a chapter cut into scenes by rule (pure Python, works offline and in tests).

    split_text(text, *, scenes=None, seconds=None, prompts="natural", known=None) -> (DraftProject, warnings)

* Paragraphs and sentences become scenes with their narration; nothing is dropped or repeated,
  except a bare speech tag ("韩立笑道：", "said Anna") whose speaker then says the quote.
* Quoted speech becomes a dialogue ``line`` when its speaker can be told (a name next to a speech
  verb in the same sentence); otherwise it stays in the narration, word for word.
* Names: 2–3 character Chinese names found before 说/道/笑道/问道... (at least twice in the text),
  and capitalised English names next to said/asked/...; they become candidate characters
  (``role1``, ``role2``... with the name; a suggested voice from 他/她 around the name).
* Length: ``scenes`` (how many) or ``seconds`` (the episode's length, ≈ 4.5 narrated Chinese
  characters a second); otherwise about ``SCENE_CHARS`` characters a scene. A dialogue closes its
  scene (narration after it starts the next one), so a scene's speech plays in the text's order.
* ``chunks(text, size)`` cuts a long text at paragraph ends (LLM calls use it; the splitter does not need to).
* ``prompts``: ``"tags"`` (English tags for SDXL, from a small glossary of places, light and
  weather) or ``"natural"`` (the scene's first sentence, for Wan and cloud engines).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .draft_model import MAX_SCENES, DraftProject

CPS = 4.5  # narrated Chinese characters a second (English: ~15 characters a second)
SCENE_CHARS = 70  # a scene's narration when no target is given (~15 s)
MAX_SCENE_CHARS = 240  # a scene never reads longer than ~55 s (Scene.duration <= 60)
MAX_TEXT = 40_000
MAX_CHARACTERS = 12

_END = "。！？!?…；;"
_OPEN, _CLOSE = "“「『‘", "”」』’"
_VERBS_ZH = ("冷笑道", "低声道", "沉声道", "轻声道", "大声道", "笑着说", "说道", "笑道", "问道", "喊道", "叫道",
             "答道", "应道", "喝道", "叹道", "怒道", "说", "道", "问", "喊")
_VERBS_EN = ("said", "asked", "replied", "shouted", "whispered", "cried", "answered", "called", "muttered", "says")
_STOP = set("他她它我你您们的了是在和与也就都又还把被着过这那一不没有很地得么呢吗吧啊呀哦说道笑问喊叫答应喝叹怒声看听想走来去上下里中只便却向对将自此其")
_EN_STOP = {"The", "He", "She", "They", "It", "We", "You", "I", "But", "And", "Then", "His", "Her", "A", "An",
            "When", "What", "Who", "Why", "How", "This", "That", "There", "So", "Yes", "No", "Oh"}
_FEMALE_HINTS = set("婉儿娘姑妹姐女妃后嫣瑶雪兰莲芸霜")

GLOSSARY = {  # Chinese words of a setting → English tags (SDXL reads English)
    "山": "mountains", "峰": "mountain peak", "谷": "valley", "林": "forest", "竹": "bamboo grove", "河": "river",
    "江": "river", "湖": "lake", "海": "sea", "瀑": "waterfall", "洞": "cave", "殿": "palace hall", "宫": "palace",
    "城": "ancient city", "街": "street", "村": "village", "院": "courtyard", "楼": "pavilion", "亭": "pavilion",
    "桥": "stone bridge", "寺": "temple", "庙": "temple", "屋": "room", "房": "room", "窗": "window",
    "月": "moonlight", "夜": "night", "星": "starry sky", "日": "sunlight", "晨": "morning", "黄昏": "dusk",
    "夕阳": "sunset", "雨": "rain", "雪": "snow", "雾": "mist", "云": "clouds", "风": "wind", "雷": "thunder",
    "火": "fire", "灯": "lantern light", "烛": "candlelight", "剑": "sword", "刀": "blade", "丹": "elixir pill",
    "阵": "magic array", "符": "talisman", "血": "blood", "马": "horse", "船": "boat", "酒": "wine",
}


# --- text → units --------------------------------------------------------------------------------
def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n|\n", text) if p.strip()]


def chunks(text: str, size: int = 6000) -> list[str]:
    """``text`` in pieces of at most ~``size`` characters, cut at paragraph ends (a longer
    paragraph is a piece of its own)."""
    out, current = [], ""
    for para in paragraphs(text):
        if current and len(current) + len(para) + 1 > size:
            out.append(current)
            current = ""
        current = f"{current}\n{para}" if current else para
    if current:
        out.append(current)
    return out


def sentences(paragraph: str) -> list[str]:
    """Cut after 。！？… (outside quotes), after a closed quote that ends in one, and after a
    Latin full stop followed by a space. Every character of the paragraph is in exactly one piece."""
    out, start, depth, i, n = [], 0, 0, 0, len(paragraph)
    straight = False
    while i < n:
        ch = paragraph[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(0, depth - 1)
            if depth == 0 and i > 0 and paragraph[i - 1] in _END + ".,，":
                # a quote ending a sentence: cut unless a speech tag follows in this sentence
                j = i + 1
                ends = j >= n or paragraph[j] in "\n" or not _tag_follows(paragraph[j:])
                if ends and paragraph[i - 1] not in ",，":
                    out.append(paragraph[start:j])
                    start = j
        elif ch == '"':
            straight = not straight
        elif depth == 0 and not straight and (ch in _END or (ch == "." and (i + 1 >= n or paragraph[i + 1] == " "))):
            j = i + 1
            while j < n and paragraph[j] in _END + _CLOSE + '"':
                j += 1
            out.append(paragraph[start:j])
            start, i = j, j
            continue
        i += 1
    if paragraph[start:].strip():
        out.append(paragraph[start:])
    return [s.strip() for s in out if s.strip()]


def _tag_follows(rest: str) -> bool:
    """Does a speech tag ("韩立笑道。", " said Anna.") start ``rest``?"""
    head = re.split(r"[。！？!?.\n“「]", rest, maxsplit=1)[0]
    if len(head) > 24:
        return False
    return any(head.rstrip("，,：: ").endswith(v) or f" {v}" in f" {head.strip()} " for v in _VERBS_ZH + _VERBS_EN)


# --- names ---------------------------------------------------------------------------------------
def find_names(text: str) -> list[tuple[str, int]]:
    """Candidate character names with how often each appears, most frequent first."""
    counts: Counter[str] = Counter()
    verbs = "|".join(sorted(map(re.escape, _VERBS_ZH), key=len, reverse=True))
    for m in re.finditer(rf"(?:{verbs})(?=[：:，,。！？“「\s]|$)", text):
        before = text[max(0, m.start() - 3):m.start()]
        c2, c3 = before[-2:], before[-3:]
        if len(c3) == 3 and _name_like(c3) and text.count(c3) >= 2 and text.count(c3) >= 0.5 * text.count(c2):
            counts[c3] += 1
        elif _name_like(c2):
            counts[c2] += 1
    en_verbs = "|".join(_VERBS_EN)
    for m in re.finditer(rf"\b([A-Z][a-z]+)\s+(?:{en_verbs})\b|\b(?:{en_verbs})\s+([A-Z][a-z]+)\b", text):
        name = m.group(1) or m.group(2)
        if name not in _EN_STOP:
            counts[name] += 1
    found = {name: len(re.findall(rf"\b{name}\b", text)) if name.isascii() else text.count(name) for name in counts}
    names = [n for n, c in found.items() if c >= 2]
    # a short name inside a longer one ("婉儿" in "林婉儿"): keep the one that is used more on its own
    keep = []
    for name in sorted(names, key=len, reverse=True):
        if any(name in other for other in keep):
            continue
        keep.append(name)
    return sorted(((n, found[n]) for n in keep), key=lambda x: (-x[1], x[0]))[:MAX_CHARACTERS]


def _name_like(cand: str) -> bool:
    return len(cand) >= 2 and all("\u4e00" <= ch <= "\u9fff" and ch not in _STOP for ch in cand)


def _voice(name: str, text: str) -> str:
    if name.isascii():
        near = " ".join(re.findall(rf"[^.!?]*\b{name}\b[^.!?]*", text))
        she, he = len(re.findall(r"\b(she|her)\b", near, re.IGNORECASE)), len(re.findall(r"\b(he|his|him)\b", near, re.IGNORECASE))
    else:
        near = "".join(text[m.start():m.start() + 40] for m in re.finditer(re.escape(name), text))
        she, he = near.count("她"), near.count("他")
        if name[-1] in _FEMALE_HINTS:
            she += 2
    return "female" if she > he else "male"


# --- units → scenes ------------------------------------------------------------------------------
@dataclass
class _Unit:
    narration: str = ""
    lines: list[tuple[str, str]] = field(default_factory=list)  # (character id, text)
    para_start: bool = False


_QUOTE = re.compile(r"[“「『]([^”」』]*)[”」』]?|\"([^\"]*)\"?")


def _speaker(remainder: str, ids: dict[str, str]) -> str | None:
    present = [name for name in ids if name in remainder]
    if len(present) == 1:
        return present[0]
    return None


def _tag_only(remainder: str, name: str) -> bool:
    rest = re.sub(r"[\s，,。：:！!？?.、—…]", "", remainder.replace(name, "", 1))
    if name.isascii():
        return rest.lower() in _VERBS_EN or any(rest.lower() == v + "softly" for v in _VERBS_EN)
    return len(rest) <= 3 and any(rest.endswith(v) for v in _VERBS_ZH)  # 道 / 笑道 / 低声道, not 摇了摇头说


def _split_long(text: str, limit: int) -> list[str]:
    """A too-long piece cut at commas (then anywhere) into pieces of at most ``limit``."""
    if len(text) <= limit:
        return [text]
    parts, current = [], ""
    for piece in re.split(r"(?<=[，,；;：:])", text):
        while len(piece) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(piece[:limit])
            piece = piece[limit:]
        if len(current) + len(piece) > limit:
            parts.append(current)
            current = ""
        current += piece
    if current:
        parts.append(current)
    return [p for p in parts if p]


def _sentence_units(sentence: str, ids: dict[str, str], para_start: bool) -> list[_Unit]:
    """One sentence as units in the order it is said: narration, then the quotes after it; a part of
    the narration that follows a quote starts a unit of its own (a scene speaks narration first)."""
    quotes = [(m.group(1) if m.group(1) is not None else m.group(2)) for m in _QUOTE.finditer(sentence)]
    remainder = _QUOTE.sub(" ", sentence).strip()
    who = _speaker(remainder, ids) if any(q and q.strip() for q in quotes) else None
    units: list[_Unit] = []
    if not who:
        pieces = _split_long(sentence, MAX_SCENE_CHARS)
        units = [_Unit(piece, [], para_start and n == 0) for n, piece in enumerate(pieces)]
        return units
    tag_only = _tag_only(remainder, who)
    current = _Unit(para_start=para_start)
    at = 0
    for m in [*_QUOTE.finditer(sentence), None]:
        between = sentence[at:m.start() if m else len(sentence)]
        if not tag_only and re.sub(r"[^\w]", "", between):
            if current.lines:
                units.append(current)
                current = _Unit()
            text = _closed(between.strip(" ：:，,"))
            for piece in _split_long(text, MAX_SCENE_CHARS)[:-1]:
                units.append(_Unit(piece, [], current.para_start))
                current.para_start = False
                text = text[len(piece):]
            current.narration += text
        if m is None:
            break
        said = (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()
        if said:
            current.lines += [(ids[who], piece) for piece in _split_long(said, 500)]
        at = m.end()
    units.append(current)
    return units


def _closed(text: str) -> str:
    """``text`` ending in sentence punctuation (a heading or a cut speech tag gets a full stop)."""
    if not text or text.endswith(tuple(_END + _CLOSE + '."')):
        return text
    return text + ("." if text.isascii() else "。")


def units_of(text: str, ids: dict[str, str]) -> list[_Unit]:
    out: list[_Unit] = []
    for para in paragraphs(text):
        units: list[_Unit] = []
        for n, sentence in enumerate(sentences(para)):
            units += _sentence_units(sentence, ids, n == 0)
        # a quote standing alone ("“苏师姐？”沈墨试探着问了一句。") is said by the speaker of what follows
        for k, unit in enumerate(units[:-1]):
            m = _QUOTE.fullmatch(unit.narration.strip())
            if not m or unit.lines:
                continue
            after = units[k + 1]
            who = after.lines[0][0] if after.lines else ids.get(_speaker(after.narration, ids) or "")
            said = (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()
            if who and said:
                unit.lines, unit.narration = [(who, piece) for piece in _split_long(said, 500)], ""
        if units:
            units[-1].narration = _closed(units[-1].narration)
        out += units
    return out


def _length(u: _Unit) -> int:
    return len(u.narration) + sum(len(t) for _, t in u.lines)


def group(units: list[_Unit], target: float, limit: int = MAX_SCENE_CHARS, strict: bool = True) -> list[list[_Unit]]:
    """Units into scenes of about ``target`` characters (at most ``limit``). ``strict``: narration
    after dialogue starts a new scene (so speech plays in the text's order)."""
    scenes: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    for u in units:
        n = _length(u)
        spoken = strict and any(x.lines for x in current)
        full = size + n > min(limit, target * 1.3) or (u.para_start and size >= 0.6 * target)
        if current and ((u.narration and spoken) or full or size >= target
                        or sum(len(x.lines) for x in current) + len(u.lines) > (8 if strict else 40)):
            scenes.append(current)
            current, size = [], 0
        current.append(u)
        size += n
    if current:
        scenes.append(current)
    return scenes


def _fit(units: list[_Unit], target: float, warnings: list[str]) -> list[list[_Unit]]:
    """Scenes of about ``target`` characters, within the 200-scene limit: larger scenes first, then
    (long texts) narration that follows dialogue in the same scene, then scenes longer than a minute."""
    for limit, strict in ((MAX_SCENE_CHARS, True), (MAX_SCENE_CHARS, False), (MAX_SCENE_CHARS * 2, False),
                          (MAX_SCENE_CHARS * 4, False)):
        size = target
        grouped = group(units, size, limit, strict)
        while len(grouped) > MAX_SCENES and size < limit:
            size *= 1.25
            grouped = group(units, size, limit, strict)
        if len(grouped) <= MAX_SCENES:
            if not strict:
                warnings.append("The text is long for 200 scenes: some scenes speak their narration before "
                                "dialogue that comes earlier in the text. / 文本较长：部分场景的旁白会先于原文中"
                                "更早的对白播出。")
            if limit > MAX_SCENE_CHARS:
                warnings.append("Some scenes read longer than a minute; shorten the text or draft with an LLM "
                                "engine. / 部分场景朗读超过一分钟，请精简文本或使用大模型起草。")
            return grouped
    raise ValueError(f"the text is too long to fit {MAX_SCENES} scenes; draft it in parts")


def _size(scene: list[_Unit]) -> int:
    return sum(_length(u) for u in scene)


def _mergeable(a: list[_Unit], b: list[_Unit]) -> bool:
    """Two neighbouring scenes may become one: it stays readable (``MAX_SCENE_CHARS``, 8 lines) and
    speech keeps the text's order (no narration after a scene's dialogue)."""
    return (_size(a) + _size(b) <= MAX_SCENE_CHARS and sum(len(u.lines) for u in a + b) <= 8
            and not (any(u.lines for u in a) and any(u.narration for u in b)))


def to_count(grouped: list[list[_Unit]], wanted: int) -> list[list[_Unit]]:
    """Bring the scene count to ``wanted`` where the text allows: merge the smallest neighbours that
    may be merged, or split the largest scene at the sentence nearest its middle. Order and text
    are untouched; a count the rules cannot reach is left as close as they allow."""
    grouped = [list(g) for g in grouped]
    while len(grouped) > wanted:
        pairs = [i for i in range(len(grouped) - 1) if _mergeable(grouped[i], grouped[i + 1])]
        if not pairs:
            break
        i = min(pairs, key=lambda j: _size(grouped[j]) + _size(grouped[j + 1]))
        grouped[i:i + 2] = [grouped[i] + grouped[i + 1]]
    while len(grouped) < wanted:
        splittable = [i for i, g in enumerate(grouped) if len(g) >= 2]
        if not splittable:
            break
        i = max(splittable, key=lambda j: _size(grouped[j]))
        g, half = grouped[i], _size(grouped[i]) / 2
        k = min(range(1, len(g)), key=lambda m: abs(_size(g[:m]) - half))
        grouped[i:i + 1] = [g[:k], g[k:]]
    return grouped


# --- prompts -------------------------------------------------------------------------------------
def visual_prompt(narration: str, names: list[str], flavour: str, speaking: bool) -> str:
    if flavour == "tags":
        tags = [tag for word, tag in GLOSSARY.items() if word in narration]
        people = {0: "", 1: "one person", 2: "two people"}.get(len(names), "a group of people")
        return ", ".join(dict.fromkeys(t for t in [people, *tags[:8], "talking" if speaking else ""] if t)) \
            or "a scene from the story"
    first = re.split(r"(?<=[。！？!?.])", narration.strip(), maxsplit=1)[0].strip()
    if not first and names:
        first = ("、".join(names) + "在交谈") if not names[0].isascii() else " and ".join(names) + " talking"
    return (first or "故事中的一个场景")[:300]


def split_text(text: str, *, scenes: int | None = None, seconds: float | None = None, prompts: str = "natural",
               known: dict[str, str] | None = None, title: str = "") -> tuple[DraftProject, list[str]]:
    """The draft of ``text`` and warnings for a person (English / Chinese on one line each).

    ``known``: names → character ids the target project already has (they are reused, not added)."""
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise ValueError("the text is empty")
    warnings: list[str] = []
    found = find_names(text)
    ids: dict[str, str] = dict(known or {})
    characters = []
    taken = set(ids.values())
    for name, count in found:
        if name in ids:
            continue
        n = len(characters) + 1
        while f"role{n}" in taken:
            n += 1
        cid = f"role{n}"
        taken.add(cid)
        ids[name] = cid
        characters.append({"id": cid, "name": name, "voice": _voice(name, text), "prompt": "",
                           "description": f"Found {count}× in the text / 文中出现 {count} 次"})
    units = units_of(text, ids)
    total = sum(_length(u) for u in units) or 1
    wanted = scenes or (max(1, round(seconds / 6.0)) if seconds else None)
    if wanted and wanted > MAX_SCENES:
        warnings.append(f"At most {MAX_SCENES} scenes; drafting {MAX_SCENES}. / 最多 {MAX_SCENES} 个场景。")
        wanted = MAX_SCENES
    target = total / wanted if wanted else SCENE_CHARS
    grouped = _fit(units, max(10.0, target), warnings)
    if wanted:
        grouped = to_count(grouped, wanted)
    names_by_id = {v: k for k, v in ids.items()}
    out = []
    for n, g in enumerate(grouped, 1):
        narration = "".join(u.narration if not u.narration.isascii() else u.narration + " " for u in g).strip()
        lines = [{"character": c, "text": t} for u in g for c, t in u.lines]
        present = [cid for name, cid in ids.items() if name in narration or any(lc == cid for u in g for lc, _ in u.lines)]
        present = list(dict.fromkeys(present))[:8]
        reading = len(narration) / (15.0 if narration.isascii() else CPS) + sum(len(x["text"]) / CPS + 0.2 for x in lines)
        duration = seconds / len(grouped) if seconds else reading
        out.append({"title": f"{n}", "narration": narration[:2000], "lines": lines, "characters": present,
                    "prompt": visual_prompt(narration, [names_by_id[c] for c in present], prompts, bool(lines)),
                    "camera": "medium close-up" if lines else ("wide shot" if g[0].para_start else "medium shot"),
                    "motion": "", "duration": round(min(60.0, max(2.0, duration)), 1)})
    if scenes and len(out) > wanted:
        warnings.append(f"Drafted {len(out)} scenes ({wanted} asked for): a scene reads at most about "
                        f"{MAX_SCENE_CHARS} characters, and dialogue closes a scene. / 共起草 {len(out)} 个场景"
                        f"（目标 {wanted} 个）：每个场景最多约 {MAX_SCENE_CHARS} 字，且对白会结束一个场景。")
    elif scenes and len(out) < wanted:
        warnings.append(f"Drafted {len(out)} scenes ({wanted} asked for): the text has only {len(out)} sentences or "
                        f"speeches to give a scene each. / 共起草 {len(out)} 个场景（目标 {wanted} 个）：文本只够分成 "
                        f"{len(out)} 个场景。")
    reading_total = total / CPS
    if seconds and reading_total > seconds * 1.15:
        warnings.append(f"The narration takes about {reading_total:.0f} s to read, longer than the {seconds:.0f} s "
                        "asked for; with timing: voice the episode lasts as long as its speech. Shorten the text or "
                        f"draft with an LLM engine to condense it. / 旁白朗读约需 {reading_total:.0f} 秒，超过目标 "
                        f"{seconds:.0f} 秒；请精简文本或使用大模型起草。")
    if not found:
        warnings.append("No character names were recognised; add characters by hand. / 未识别出角色名，请手动添加角色。")
    if prompts == "tags":
        warnings.append("Offline prompts are rough English tags from a small glossary; edit them or draft with an "
                        "LLM engine. / 离线生成的提示词较粗略，请修改或使用大模型起草。")
    draft = DraftProject.model_validate({"title": title[:200], "characters": characters, "scenes": out},
                                        context={"known": set(ids.values())})
    return draft, warnings
