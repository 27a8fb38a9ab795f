"""Subtitles from the script (never from listening to the audio): cues, SRT, ASS, a CJK font.

    cues_for(timeline) -> [Cue]                  every placed utterance split and timed
    split_text(text) -> [[line, line?], ...]     cues of at most 2 lines of ~16 CJK / ~42 Latin characters
    write_srt(cues, path) / write_ass(cues, path, width, height, style, font)
    find_cjk_font(extra_dirs) -> Font | None     a font that draws Chinese (fontconfig, known paths, our dirs)

A cue is timed from the TTS engine's timings when the utterance has them (characters are matched
in order, ignoring spaces and punctuation), otherwise the utterance's duration is spread over its
cues by their length. A cue never runs past its scene's end unless the speech itself does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from profiles.timeline import CJK, Timeline
from core.platform import no_window

LINE_UNITS = 16.0  # one line: 16 CJK characters, or 42 Latin ones
LATIN_UNIT = 16.0 / 42.0
MAX_LINES = 2
SENTENCE_END = "。！？!?…"
BREAKS = "，、；：,;:" + SENTENCE_END
DROP_AT_LINE_END = "，、；：,;。."  # shown as a line break instead
_SIG = re.compile(r"[\w\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str = ""


@dataclass(frozen=True)
class Font:
    family: str
    path: Path | None

    @property
    def folder(self) -> Path | None:
        return self.path.parent if self.path else None


# --- splitting ------------------------------------------------------------------------------
def units(text: str) -> float:
    return sum(1.0 if CJK.match(ch) else LATIN_UNIT for ch in text)


def _phrases(text: str) -> list[str]:
    """Pieces that end at punctuation (kept with the piece), in order."""
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch in BREAKS:
            out.append(cur.strip())
            cur = ""
    if cur.strip():
        out.append(cur.strip())
    return [p for p in out if p]


def _cut(piece: str) -> list[str]:
    """A piece longer than a line, cut into line-sized parts (between words for Latin text)."""
    out, cur = [], ""
    for token in re.findall(r"[A-Za-z0-9'\-]+\s*|\S\s*|\s+", piece):
        if cur and units(cur + token.rstrip()) > LINE_UNITS:
            out.append(cur.strip())
            cur = ""
        cur += token
    if cur.strip():
        out.append(cur.strip())
    return out


def _join(a: str, b: str) -> str:
    if not a:
        return b
    latin = not CJK.match(a[-1]) and a[-1] not in "，。！？、；：" and b and not CJK.match(b[0])
    return a + (" " if latin else "") + b


def _tidy(line: str) -> str:
    return line.rstrip(DROP_AT_LINE_END).strip() or line.strip()


def split_text(text: str) -> list[list[str]]:
    """Cues (each a list of at most 2 lines) for one utterance; lines break at punctuation first."""
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    lines: list[tuple[str, bool]] = []  # (line, ends a sentence)
    cur = ""
    for phrase in _phrases(text):
        for piece in (_cut(phrase) if units(phrase) > LINE_UNITS else [phrase]):
            if cur and units(_join(cur, piece)) > LINE_UNITS:
                lines.append((cur, cur[-1] in SENTENCE_END))
                cur = ""
            cur = _join(cur, piece)
            if cur[-1] in SENTENCE_END:
                lines.append((cur, True))
                cur = ""
    if cur:
        lines.append((cur, True))
    cues: list[list[str]] = []
    for line, ends in lines:
        if cues and len(cues[-1]) < MAX_LINES and not cues[-1][-1][1]:
            cues[-1].append((line, ends))
        else:
            cues.append([(line, ends)])
    return [[_tidy(line) for line, _ in cue] for cue in cues]


# --- timing ---------------------------------------------------------------------------------
def _significant(text: str) -> int:
    return len(_SIG.findall(text))


def time_cues(cues: list[list[str]], start: float, duration: float,
              timings: tuple[tuple[float, float, str], ...] = ()) -> list[tuple[float, float]]:
    """(start, end) of each cue in episode seconds."""
    counts = [sum(_significant(x) for x in cue) for cue in cues]
    if timings and sum(counts) and sum(_significant(t) for _a, _b, t in timings) == sum(counts):
        marks = []  # the time span of each significant character, in order
        for a, b, t in timings:
            n = _significant(t)
            marks += [(a + (b - a) * k / n, a + (b - a) * (k + 1) / n) for k in range(n)]
        spans, i = [], 0
        for n in counts:
            first = marks[min(i, len(marks) - 1)]
            last = marks[min(i + n, len(marks)) - 1] if n else first
            spans.append([start + first[0], start + last[1]])
            i += n
        for k in range(len(spans) - 1):  # a cue stays up through the pause until the next one
            spans[k][1] = max(spans[k][1], spans[k + 1][0])
        spans[-1][1] = max(spans[-1][1], start + duration)
        return [(a, b) for a, b in spans]
    weights = [max(units("".join(cue)), 0.5) for cue in cues]
    total, at, out = sum(weights), start, []
    for w in weights:
        out.append((at, at + duration * w / total))
        at += duration * w / total
    return out


def cues_for(timeline: Timeline) -> list[Cue]:
    out: list[Cue] = []
    for scene in timeline.scenes:
        for placed in scene.speech:
            u = placed.utterance
            parts = split_text(u.text)
            if not parts:
                continue
            limit = max(scene.end, placed.end)
            for lines, (a, b) in zip(parts, time_cues(parts, placed.start, u.duration, u.timings)):
                out.append(Cue(round(a, 3), round(min(b, limit), 3), tuple(lines), u.speaker))
    return out


# --- files ----------------------------------------------------------------------------------
def _srt_time(t: float) -> str:
    ms = max(0, round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_text(cues: list[Cue]) -> str:
    blocks = [f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n" + "\n".join(c.lines) + "\n"
              for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def _ass_time(t: float) -> str:
    cs = max(0, round(t * 100))
    return f"{cs // 360000:d}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _ass_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("{", "(").replace("}", ")")


def ass_text(cues: list[Cue], width: int, height: int, style: dict, family: str) -> str:
    size = style.get("size") or max(12, round(height / 16))
    align = {"bottom": 2, "middle": 5, "top": 8}[style.get("position", "bottom")]
    outline = style.get("outline", 2.0)
    margin = max(4, round(height / 24))
    head = (
        "[Script Info]\nScriptType: v4.00+\nWrapStyle: 2\nScaledBorderAndShadow: yes\n"
        f"PlayResX: {width}\nPlayResY: {height}\nYCbCr Matrix: TV.709\n\n"
        "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
        "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
        "Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,{family},{size},&H00FFFFFF,&H000000FF,&H00000000,&H64000000,0,0,0,0,100,100,0,0,1,"
        f"{outline:g},{min(outline, 1.0):g},{align},{margin},{margin},{margin},1\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")
    events = [f"Dialogue: 0,{_ass_time(c.start)},{_ass_time(c.end)},Default,{_ass_escape(c.speaker)},0,0,0,,"
              + "\\N".join(_ass_escape(x) for x in c.lines) for c in cues]
    return head + "\n".join(events) + "\n"


def write_srt(cues: list[Cue], path: Path) -> Path:
    path.write_text(srt_text(cues), encoding="utf-8")
    return path


def write_ass(cues: list[Cue], path: Path, width: int, height: int, style: dict, font: Font | None) -> Path:
    family = style.get("font") or (font.family if font else "Noto Sans CJK SC")
    path.write_text(ass_text(cues, width, height, style, family), encoding="utf-8-sig")
    return path


# --- fonts ----------------------------------------------------------------------------------
KNOWN_FONTS = [  # (file, family): the usual Chinese fonts of each system
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "WenQuanYi Micro Hei"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "WenQuanYi Zen Hei"),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "Droid Sans Fallback"),
    ("/System/Library/Fonts/PingFang.ttc", "PingFang SC"),
    ("/System/Library/Fonts/STHeiti Medium.ttc", "Heiti SC"),
    ("/Library/Fonts/Arial Unicode.ttf", "Arial Unicode MS"),
    ("C:/Windows/Fonts/msyh.ttc", "Microsoft YaHei"),
    ("C:/Windows/Fonts/simhei.ttf", "SimHei"),
    ("C:/Windows/Fonts/simsun.ttc", "SimSun"),
]
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")


def _fc(args: list[str]) -> str:
    exe = shutil.which(args[0])
    if not exe:
        return ""
    try:
        return subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=20, check=False,
                              creationflags=no_window()).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _draws_chinese(path: Path) -> bool | None:
    """fontconfig's answer for one file (None: no fc-query here)."""
    out = _fc(["fc-query", "--format", "%{lang}\n", str(path)])
    return ("zh-cn" in out or "zh" in out.split("|")) if out else None


def find_cjk_font(extra_dirs: list[Path] = (), wanted: str = "") -> Font | None:
    """The studio's own font folders first, then fontconfig, then the usual paths of each system."""
    for folder in extra_dirs:
        for path in sorted(Path(folder).glob("*")) if Path(folder).is_dir() else []:
            if path.suffix.lower() in FONT_SUFFIXES and _draws_chinese(path) is not False:
                family = _fc(["fc-query", "--format", "%{family[0]}", str(path)]).strip() or path.stem
                return Font(family, path)
    listing = _fc(["fc-list", f"{wanted}:lang=zh" if wanted else ":lang=zh", "family", "file"])
    for row in sorted(listing.splitlines(), key=lambda r: ("CJK SC" not in r, "Sans" not in r, r)):
        file, _, family = row.partition(": ")
        if file and family:
            return Font(family.split(",")[0].strip(), Path(file))
    for file, family in KNOWN_FONTS:
        if os.path.isfile(file):
            return Font(family, Path(file))
    return None


def needs_cjk(cues: list[Cue]) -> bool:
    return any(CJK.search(line) for c in cues for line in c.lines)
