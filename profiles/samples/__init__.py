"""Built-in sample projects (one folder each, beside this file) and their first-start install."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from core.platform import move_dir

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parent
MARKER = ".samples-installed"


def sample_ids() -> list[str]:
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if (p / "project.yaml").is_file())


def install_samples(projects_dir: Path) -> list[str]:
    """Copy the samples into ``projects_dir`` once per workspace (a marker file remembers it, so a
    sample the user deleted does not come back). Returns the ids copied."""
    marker = projects_dir / MARKER
    if marker.exists():
        return []
    projects_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for sample_id in sample_ids():
        target = projects_dir / sample_id
        if target.exists():
            continue
        tmp = projects_dir / f".sample-{sample_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(SAMPLES_DIR / sample_id, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        for sub in ("assets", "renders"):
            (tmp / sub).mkdir(exist_ok=True)
        move_dir(tmp, target)
        copied.append(sample_id)
    marker.write_text("The built-in sample projects were copied here once; delete this file to get them again.\n",
                      encoding="utf-8")
    if copied:
        log.info("sample projects installed: %s", ", ".join(copied))
    return copied
