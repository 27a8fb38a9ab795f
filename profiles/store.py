"""Projects on disk: list, open (reloaded whenever a file changes), create, duplicate, edit.

The YAML files are the source of truth. Every edit reads the file as it is now on disk,
applies one change, validates the whole project, and writes atomically — a hand edit made
in between is never overwritten by a stale copy, and a file that does not validate is left
exactly as it is (the error names file, field and fix).
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

from core.errors import Conflict, NotFound, ProfileError, ValidationError
from core.media import atomic_write_bytes
from core.platform import move_dir

from .errors import validate
from .project import PROJECT_FILE, Project, check_references, file_version, load_project
from .schema import SLUG, Character, CharactersFile, ProjectConfig, ScenesFile
from .yamlio import HEADER_MARK, write_yaml

MAX_ASSET_BYTES = 20 * 2**20
MAX_AUDIO_BYTES = 50 * 2**20
HEADERS = {
    "project": f"{HEADER_MARK} (仙影). Edit by hand or in the Projects tab; the studio reloads it.",
    "characters": f"{HEADER_MARK}. reference_images are files under assets/ (add your own face photos).",
    "scenes": f"{HEADER_MARK}. Scenes play in this order; ids are letters, digits, '-' and '_'.",
}


def slugify(text: str, fallback: str = "project") -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")[:48]
    return slug if slug and SLUG.match(slug) else fallback


class ProjectStore:
    """The projects under ``root`` (``<workspace>/projects``)."""

    def __init__(self, root: Path):
        self.root = root
        self._cache: dict[str, Project] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # --- finding -------------------------------------------------------------------------
    def folder(self, project_id: str) -> Path:
        if not isinstance(project_id, str) or not SLUG.match(project_id):
            raise NotFound(f"'{str(project_id)[:64]}' is not a project id (letters, digits, '-', '_').",
                           f"“{str(project_id)[:64]}”不是有效的项目 ID（字母、数字、“-”、“_”）。")
        return self.root / project_id

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and SLUG.match(p.name) and (p / PROJECT_FILE).is_file())

    def exists(self, project_id: str) -> bool:
        return (self.folder(project_id) / PROJECT_FILE).is_file()

    def get(self, project_id: str) -> Project:
        """The project as its files are now (re-read when any of them changed since last time)."""
        folder = self.folder(project_id)
        cached = self._cache.get(project_id)
        if cached is not None and file_version(folder, tuple(v[0] for v in cached.version)) == cached.version:
            return cached
        project = load_project(folder, project_id)
        self._cache[project_id] = project
        return project

    def summaries(self) -> list[dict]:
        """Every project with its title and counts; a broken one shows its error instead."""
        out = []
        for pid in self.ids():
            try:
                p = self.get(pid)
                out.append({"id": pid, "title": p.config.title, "style": p.config.style,
                            "scenes": len(p.scenes), "characters": len(p.characters), "error": None})
            except (ProfileError, NotFound) as exc:
                out.append({"id": pid, "title": pid, "style": None, "scenes": 0, "characters": 0,
                            "error": exc.en, "error_zh": exc.zh})
        return out

    def find_character(self, character_id: str) -> tuple[Project, Character]:
        """The first project (by id) that defines ``character_id`` (seed 000's ``character_id``);
        ``project.faces(character_id)`` lists its reference images that exist."""
        for pid in self.ids():
            try:
                project = self.get(pid)
            except (ProfileError, NotFound):
                continue
            if character_id in project.characters:
                return project, project.characters[character_id]
        raise NotFound(f"Unknown character '{str(character_id)[:64]}'. Define it in a project's characters.yaml.",
                       f"未知角色“{str(character_id)[:64]}”。请在某个项目的 characters.yaml 中定义。")

    def lock(self, project_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(project_id, threading.Lock())

    # --- creating ------------------------------------------------------------------------
    def new_id(self, wanted: str) -> str:
        base = slugify(wanted)
        pid, n = base, 2
        while (self.root / pid).exists():
            pid, n = f"{base}-{n}", n + 1
        return pid

    def create(self, project_id: str, title: str, **config: Any) -> Project:
        folder = self.folder(project_id)
        if folder.exists():
            raise Conflict(f"A project '{project_id}' already exists; choose another id.",
                           f"项目“{project_id}”已存在，请换一个 ID。")
        cfg = validate(ProjectConfig, {"title": title, **config}, PROJECT_FILE)
        tmp = self.root / f".new-{project_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "assets").mkdir(parents=True)
        (tmp / "renders").mkdir()
        write_yaml(tmp / PROJECT_FILE, cfg.model_dump(mode="json", exclude_defaults=False), HEADERS["project"])
        write_yaml(tmp / cfg.character_profiles, {"characters": {}}, HEADERS["characters"])
        write_yaml(tmp / cfg.scene_profiles, {"scenes": []}, HEADERS["scenes"])
        move_dir(tmp, folder)
        return self.get(project_id)

    def duplicate(self, source_id: str, new_id: str | None = None, title: str | None = None) -> Project:
        source = self.get(source_id)
        new_id = new_id or self.new_id(f"{source_id}-copy")
        target = self.folder(new_id)
        if target.exists():
            raise Conflict(f"A project '{new_id}' already exists; choose another id.",
                           f"项目“{new_id}”已存在，请换一个 ID。")
        tmp = self.root / f".dup-{new_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source.dir, tmp, ignore=shutil.ignore_patterns("renders", ".*"))
        (tmp / "renders").mkdir(exist_ok=True)
        move_dir(tmp, target)
        if title:
            self.update_config(new_id, {"title": title})
        return self.get(new_id)

    # --- editing -------------------------------------------------------------------------
    def update_config(self, project_id: str, changes: dict) -> Project:
        with self.lock(project_id):
            project = self.get(project_id)
            data = {**project.config.model_dump(mode="json"), **changes}
            cfg = validate(ProjectConfig, data, PROJECT_FILE)
            write_yaml(project.dir / PROJECT_FILE, cfg.model_dump(mode="json"), HEADERS["project"])
            return self.get(project_id)

    def edit_characters(self, project_id: str, change: Callable[[dict], dict | None]) -> Project:
        """``change(characters_as_dicts)`` edits (or returns) the mapping; the result is validated and written."""
        with self.lock(project_id):
            project = self.get(project_id)
            data = {cid: c.model_dump(mode="json") for cid, c in project.characters.items()}
            data = change(data) or data
            name = project.config.character_profiles
            chars = validate(CharactersFile, {"characters": data}, name).characters
            check_references(chars, project.scenes, project.config.scene_profiles, name)
            write_yaml(project.characters_file,
                       {"characters": {cid: c.model_dump(mode="json") for cid, c in chars.items()}},
                       HEADERS["characters"])
            return self.get(project_id)

    def edit_scenes(self, project_id: str, change: Callable[[list], list | None]) -> Project:
        """``change(scenes_as_dicts)`` edits (or returns) the list; validated and written like characters."""
        with self.lock(project_id):
            project = self.get(project_id)
            data = [s.model_dump(mode="json") for s in project.scenes]
            data = change(data) or data
            name = project.config.scene_profiles
            scenes = validate(ScenesFile, {"scenes": data}, name).scenes
            check_references(project.characters, scenes, name, project.config.character_profiles)
            write_yaml(project.scenes_file, {"scenes": [_lean(s.model_dump(mode="json")) for s in scenes]},
                       HEADERS["scenes"])
            return self.get(project_id)

    def upsert_scene(self, project_id: str, scene: dict, index: int | None = None) -> Project:
        def change(scenes: list) -> list:
            at = next((i for i, s in enumerate(scenes) if s["id"] == scene.get("id")), None)
            if at is not None:
                scenes[at] = {**scenes[at], **scene}
            else:
                scenes.insert(len(scenes) if index is None else index, scene)
            return scenes

        return self.edit_scenes(project_id, change)

    def move_scene(self, project_id: str, scene_id: str, offset: int) -> Project:
        def change(scenes: list) -> list:
            at = next((i for i, s in enumerate(scenes) if s["id"] == scene_id), None)
            if at is None:
                raise NotFound(f"No scene '{scene_id}'.", f"没有场景“{scene_id}”。")
            item = scenes.pop(at)
            scenes.insert(max(0, min(len(scenes), at + offset)), item)
            return scenes

        return self.edit_scenes(project_id, change)

    def remove_scene(self, project_id: str, scene_id: str) -> Project:
        return self.edit_scenes(project_id, lambda scenes: [s for s in scenes if s["id"] != scene_id])

    def upsert_character(self, project_id: str, character_id: str, fields: dict) -> Project:
        if not SLUG.match(character_id or ""):
            raise ValidationError(f"'{character_id}' is not a valid character id (letters, digits, '-', '_').",
                                  f"“{character_id}”不是有效的角色 ID（字母、数字、“-”、“_”）。")

        def change(chars: dict) -> dict:
            chars[character_id] = {**chars.get(character_id, {}), **fields}
            return chars

        return self.edit_characters(project_id, change)

    def remove_character(self, project_id: str, character_id: str) -> Project:
        users = [s.id for s in self.get(project_id).scenes if character_id in s.characters]
        if users:
            raise Conflict(f"'{character_id}' is used by scene(s) {', '.join(users)}: remove it from them first.",
                           f"角色“{character_id}”仍被场景 {', '.join(users)} 使用，请先从这些场景中移除。")

        def change(chars: dict) -> dict:
            chars.pop(character_id, None)
            return chars

        return self.edit_characters(project_id, change)

    # --- assets --------------------------------------------------------------------------
    def add_asset(self, project_id: str, subdir: str, data: bytes, stem: str = "image") -> str:
        """Store an uploaded image under ``assets/<subdir>/``; returns its assets-relative path."""
        if not SLUG.match(subdir):
            raise ValidationError("Bad asset folder name.", "资源文件夹名称无效。")
        from core.images import check_image

        ext = check_image(data, max_bytes=MAX_ASSET_BYTES, what="image", what_zh="图片")
        project = self.get(project_id)
        import hashlib

        name = f"{slugify(stem, 'image')}-{hashlib.sha256(data).hexdigest()[:8]}.{ext}"
        atomic_write_bytes(project.assets_dir / subdir / name, data)
        return f"{subdir}/{name}"

    def add_audio(self, project_id: str, data: bytes, filename: str) -> str:
        """Store uploaded music under ``assets/music/`` once it decodes as sound; returns its assets-relative path."""
        import hashlib
        import io

        from .schema import AUDIO_SUFFIXES

        ext = Path(filename or "").suffix.lower()
        if ext not in AUDIO_SUFFIXES:
            raise ValidationError(f"Music must be an audio file ({', '.join(AUDIO_SUFFIXES)}).",
                                  f"音乐必须是音频文件（{', '.join(AUDIO_SUFFIXES)}）。")
        if len(data) > MAX_AUDIO_BYTES:
            raise ValidationError(f"The music file is larger than {MAX_AUDIO_BYTES // 2**20} MB.",
                                  f"音乐文件超过 {MAX_AUDIO_BYTES // 2**20} MB。")
        try:
            import av

            with av.open(io.BytesIO(data)) as container:
                stream = container.streams.audio[0]
                next(iter(container.decode(stream)))
        except Exception:  # not sound, or nothing PyAV can read: name the problem, not the library's words
            raise ValidationError("This file has no sound the studio can read (try an MP3 or WAV).",
                                  "无法读取此文件中的声音（请使用 MP3 或 WAV）。") from None
        project = self.get(project_id)
        name = f"{slugify(Path(filename).stem, 'music')}-{hashlib.sha256(data).hexdigest()[:8]}{ext}"
        atomic_write_bytes(project.assets_dir / "music" / name, data)
        return f"music/{name}"


def _lean(scene: dict) -> dict:
    """A scene as written to YAML: empty optional fields left out, so the file stays readable."""
    keep = {"id", "prompt", "duration", "characters"}
    if scene.get("lines"):  # a line starts after the one before unless it has ``at``
        scene = {**scene, "lines": [{k: v for k, v in line.items() if v is not None} for line in scene["lines"]]}
    return {k: v for k, v in scene.items()
            if k in keep or (v not in (None, "", [], {}) and not (k == "continue" and v is False))}
