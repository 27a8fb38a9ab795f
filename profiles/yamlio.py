"""Reading and writing project YAML safely.

Reading: ``yaml.safe_load`` semantics through a loader that refuses anchors and aliases (a
"billion laughs" file cannot expand), duplicate keys and deep nesting, after refusing files
over ``MAX_YAML_BYTES``. Every problem is a ``ProfileError`` naming the file and the line.

Writing: plain block YAML (Unicode kept), written to a temporary file and renamed, so a
crash never leaves half a file. Hand-written comments are not kept by a rewrite; a file
last written by hand is saved beside it as ``<name>.bak`` first, so nothing typed is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent

from core.errors import ProfileError
from core.media import atomic_write_bytes

MAX_YAML_BYTES = 256 * 1024
MAX_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases or duplicate keys, with a nesting limit."""

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.get_event()
            raise yaml.constructor.ConstructorError(
                None, None, f"aliases (*{event.anchor}) are not allowed in project files", event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"anchors (&{event.anchor}) are not allowed in project files", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.constructor.ConstructorError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, name: str) -> Any:
    """Parse one YAML document; ``name`` is the file name used in errors."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise _too_big(name)
    try:
        loader = _StrictLoader(text)  # a SafeLoader subclass: no anchors/aliases, no python tags
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "not valid YAML"
        raise ProfileError(
            f"{name}{where}: {problem}. Fix: correct the YAML there (quote text containing ':' or '#').",
            f"{name}{where}：{problem}。请修正该处的 YAML（含有“:”或“#”的文字请加引号）。",
            file=name, field=None) from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{name}: not valid YAML ({type(exc).__name__}). Fix: correct the file.",
                           f"{name}：YAML 格式错误。请修正该文件。", file=name, field=None) from None
    except RecursionError:
        raise ProfileError(f"{name}: nested too deeply. Fix: simplify the file.",
                           f"{name}：嵌套层级过深，请简化文件。", file=name, field=None) from None


def read_yaml(path: Path, name: str | None = None) -> Any:
    name = name or path.name
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ProfileError(f"{name} is missing. Fix: create it (see the sample project for its shape).",
                           f"缺少 {name}。请创建该文件（格式见示例项目）。", file=name, field=None) from None
    if size > MAX_YAML_BYTES:
        raise _too_big(name)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ProfileError(f"{name}: not UTF-8 text. Fix: save the file as UTF-8.",
                           f"{name}：不是 UTF-8 文本。请以 UTF-8 编码保存。", file=name, field=None) from None
    return parse_yaml(text, name)


def _too_big(name: str) -> ProfileError:
    kb = MAX_YAML_BYTES // 1024
    return ProfileError(f"{name} is larger than {kb} KB; project files are small. Fix: split or trim it.",
                        f"{name} 超过 {kb} KB，项目文件不应这么大。请精简该文件。", file=name, field=None)


def dump_yaml(data: Any, header: str = "") -> str:
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False, width=100)
    return (header.rstrip("\n") + "\n" if header else "") + body


def write_yaml(path: Path, data: Any, header: str = "") -> Path:
    """Write ``data`` atomically; keep the previous hand-written version as ``<name>.bak``."""
    text = dump_yaml(data, header)
    if path.exists():
        old = path.read_bytes()
        if old.decode("utf-8", "replace") == text:
            return path
        if not old.startswith(HEADER_MARK.encode()):  # written by hand: keep that version once
            atomic_write_bytes(path.with_name(path.name + ".bak"), old)
    return atomic_write_bytes(path, text.encode("utf-8"))


HEADER_MARK = "# Written by Xianying Studio"
