"""Export a project as a zip, and import one safely.

Import refuses what a hostile archive could do: names with ``..``, absolute or drive paths
(zip-slip), links, too many entries, too much data once unpacked (zip bombs). Only the
project's own kinds of files are taken: the YAML files and a README at the top, images
under ``assets/``. The archive is unpacked into a hidden folder, the project is loaded and
validated there, and only then renamed into place.
"""

from __future__ import annotations

import io
import shutil
import stat
import zipfile
from pathlib import PurePosixPath

from core.errors import PathTooLong, ProfileError, ValidationError
from core.platform import check_path_length, move_dir

from .project import PROJECT_FILE, load_project
from .schema import IMAGE_SUFFIXES, SLUG
from .store import ProjectStore, slugify
from .yamlio import MAX_YAML_BYTES, read_yaml

MAX_ZIP_BYTES = 200 * 2**20  # the archive itself
MAX_UNPACKED_BYTES = 500 * 2**20
MAX_ENTRIES = 2000
MAX_RATIO = 200  # unpacked / packed for one member
TOP_FILES = (".yaml", ".yml", ".md", ".txt")


def export_zip(store: ProjectStore, project_id: str, include_renders: bool = False) -> bytes:
    """The project folder as a zip (``<id>/...``); renders are left out unless asked for."""
    project = store.get(project_id)
    home = project.dir.resolve()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(project.dir.rglob("*")):
            rel = path.relative_to(project.dir)
            if (not path.is_file() or path.is_symlink() or any(p.startswith(".") for p in rel.parts)
                    or not path.resolve().is_relative_to(home)):  # nothing reached through a link
                continue
            if rel.parts[0] == "renders" and not include_renders:
                continue
            zf.write(path, f"{project_id}/{rel.as_posix()}")
    return buf.getvalue()


def _bad(en: str, zh: str) -> ValidationError:
    return ValidationError(f"This zip cannot be imported: {en}", f"无法导入该压缩包：{zh}")


def _members(zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise _bad(f"more than {MAX_ENTRIES} files.", f"文件数超过 {MAX_ENTRIES}。")
    total = 0
    out = []
    for info in infos:
        name = info.filename.replace("\\", "/")
        path = PurePosixPath(name)
        if name.startswith("/") or ":" in name or any(p in ("..", "") for p in path.parts if p != "/"):
            raise _bad(f"unsafe path '{name[:100]}'.", f"不安全的路径“{name[:100]}”。")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _bad(f"'{name[:100]}' is a link.", f"“{name[:100]}”是链接。")
        if info.is_dir():
            continue
        total += info.file_size
        if total > MAX_UNPACKED_BYTES or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO
                                          and info.file_size > 2**20):
            raise _bad("it unpacks to too much data.", "解压后数据过大。")
        out.append((info, path))
    return out


def _strip_top(members):
    """Drop one common top folder (``<id>/project.yaml``) when every file is inside it."""
    tops = {p.parts[0] for _, p in members if len(p.parts) > 1}
    if len(tops) == 1 and all(len(p.parts) > 1 for _, p in members):
        top = tops.pop()
        return top, [(i, PurePosixPath(*p.parts[1:])) for i, p in members]
    return None, members


def _wanted(path: PurePosixPath) -> bool:
    if any(part.startswith(".") for part in path.parts):
        return False
    if len(path.parts) == 1:
        return path.suffix.lower() in TOP_FILES
    return path.parts[0] == "assets" and path.suffix.lower() in IMAGE_SUFFIXES


def import_zip(store: ProjectStore, data: bytes, project_id: str | None = None) -> tuple[str, list[str]]:
    """Unpack ``data`` as a new project; returns (project id, names of skipped files)."""
    if len(data) > MAX_ZIP_BYTES:
        raise _bad(f"larger than {MAX_ZIP_BYTES // 2**20} MB.", f"超过 {MAX_ZIP_BYTES // 2**20} MB。")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise _bad("not a zip file.", "不是 zip 文件。") from None
    with zf:
        top, members = _strip_top(_members(zf))
        if not any(str(p) == PROJECT_FILE for _, p in members):
            raise _bad(f"no {PROJECT_FILE} in it.", f"其中没有 {PROJECT_FILE}。")
        wanted = project_id or (top if top and SLUG.match(top) else None)
        if project_id is not None and not SLUG.match(project_id):
            raise _bad("the project id may use letters, digits, '-' and '_'.", "项目 ID 只能使用字母、数字、“-”和“_”。")
        store.root.mkdir(parents=True, exist_ok=True)
        staging = store.root / f".import-{slugify(wanted or 'project')}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        skipped = []
        try:
            for info, path in members:
                if not _wanted(path):
                    skipped.append(str(path))
                    continue
                if path.suffix.lower() in (".yaml", ".yml") and info.file_size > MAX_YAML_BYTES:
                    raise _bad(f"{path} is too large for a project file.", f"{path} 过大。")
                target = check_path_length(staging.joinpath(*path.parts))
                if not target.resolve().is_relative_to(staging.resolve()):
                    raise _bad(f"unsafe path '{path}'.", f"不安全的路径“{path}”。")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            (staging / "assets").mkdir(exist_ok=True)
            (staging / "renders").mkdir(exist_ok=True)
            if not wanted:
                data = read_yaml(staging / PROJECT_FILE)
                wanted = slugify(str(data.get("title", "")) if isinstance(data, dict) else "", "project")
            final_id = wanted if not (store.root / wanted).exists() else store.new_id(wanted)
            load_project(staging, final_id)  # validates everything before it becomes a project
            move_dir(staging, store.root / final_id)
        except (ProfileError, ValidationError, PathTooLong, OSError):
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return final_id, skipped
