"""One project folder, loaded and cross-checked: ``load_project(folder)`` → ``Project``.

    <projects>/<id>/project.yaml  characters.yaml  scenes.yaml  assets/  renders/
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import NotFound, ProfileError

from .errors import validate
from .schema import SLUG, Character, CharactersFile, ProjectConfig, Scene, ScenesFile
from .styles import compose
from .yamlio import read_yaml

PROJECT_FILE = "project.yaml"


@dataclass(frozen=True)
class Project:
    id: str
    dir: Path
    config: ProjectConfig
    characters: dict[str, Character]
    scenes: list[Scene]
    version: tuple  # (name, mtime_ns, size) of each file: changes when a file changes on disk

    @property
    def characters_file(self) -> Path:
        return self.dir / self.config.character_profiles

    @property
    def scenes_file(self) -> Path:
        return self.dir / self.config.scene_profiles

    @property
    def assets_dir(self) -> Path:
        return self.dir / "assets"

    @property
    def renders_dir(self) -> Path:
        return self.dir / "renders"

    def scene(self, scene_id: str) -> Scene:
        for scene in self.scenes:
            if scene.id == scene_id:
                return scene
        known = ", ".join(s.id for s in self.scenes) or "none"
        raise NotFound(f"Project '{self.id}' has no scene '{scene_id}' (scenes: {known}).",
                       f"项目“{self.id}”中没有场景“{scene_id}”（现有：{known}）。")

    def asset(self, rel: str) -> Path:
        """The file for an ``assets/`` path (validated by the schema; checked again here)."""
        path = (self.assets_dir / rel).resolve()
        if not path.is_relative_to(self.assets_dir.resolve()):
            raise ProfileError(f"{rel}: outside the project's assets folder.", f"{rel}：不在项目的 assets 目录内。",
                               file=None, field=None)
        return path

    def faces(self, character_id: str) -> list[Path]:
        """The character's reference images that exist on disk."""
        character = self.characters.get(character_id)
        if character is None:
            return []
        return [p for p in (self.asset(r) for r in character.reference_images) if p.is_file()]

    def composed(self, scene: Scene) -> tuple[str, str]:
        return compose(self.config, self.characters, scene)


def file_version(folder: Path, names: tuple[str, ...]) -> tuple:
    out = []
    for name in names:
        try:
            st = (folder / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append((name, None, None))
    return tuple(out)


def check_references(characters: dict[str, Character], scenes: list[Scene], scenes_name: str,
                     characters_name: str) -> None:
    known = ", ".join(characters) or "none"
    for i, scene in enumerate(scenes):
        for j, cid in enumerate(scene.characters):
            if cid not in characters:
                raise ProfileError(
                    f"{scenes_name} → scenes[{i}].characters[{j}]: unknown character '{cid}'. Fix: define it in "
                    f"{characters_name} or remove it from scene '{scene.id}' (characters: {known}).",
                    f"{scenes_name} → scenes[{i}].characters[{j}]：未知角色“{cid}”。请在 {characters_name} 中定义，"
                    f"或从场景“{scene.id}”中删除（现有角色：{known}）。",
                    file=scenes_name, field=f"scenes[{i}].characters[{j}]")
        for j, line in enumerate(scene.lines):
            if line.character not in characters:
                raise ProfileError(
                    f"{scenes_name} → scenes[{i}].lines[{j}].character: unknown character '{line.character}'. Fix: "
                    f"define it in {characters_name} or use one of: {known}.",
                    f"{scenes_name} → scenes[{i}].lines[{j}].character：未知角色“{line.character}”。请在 "
                    f"{characters_name} 中定义，或使用现有角色：{known}。",
                    file=scenes_name, field=f"scenes[{i}].lines[{j}].character")


def load_project(folder: Path, project_id: str | None = None) -> Project:
    project_id = project_id or folder.name
    if not SLUG.match(project_id):
        raise NotFound(f"'{project_id[:64]}' is not a project id.", f"“{project_id[:64]}”不是有效的项目 ID。")
    if not (folder / PROJECT_FILE).is_file():
        raise NotFound(f"No project '{project_id}' (no {PROJECT_FILE} in {folder}).",
                       f"找不到项目“{project_id}”（{folder} 中没有 {PROJECT_FILE}）。")
    config = validate(ProjectConfig, read_yaml(folder / PROJECT_FILE), PROJECT_FILE)
    names = (PROJECT_FILE, config.character_profiles, config.scene_profiles)
    version = file_version(folder, names)
    chars_path = folder / config.character_profiles
    characters = (validate(CharactersFile, read_yaml(chars_path), config.character_profiles).characters
                  if chars_path.exists() else {})
    scenes_path = folder / config.scene_profiles
    scenes = (validate(ScenesFile, read_yaml(scenes_path), config.scene_profiles).scenes
              if scenes_path.exists() else [])
    check_references(characters, scenes, config.scene_profiles, config.character_profiles)
    return Project(project_id, folder, config, characters, scenes, version)
