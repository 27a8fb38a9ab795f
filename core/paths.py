"""Paths a request names: kept inside their folder, never through a symlink."""

from __future__ import annotations

import os
from pathlib import Path


def contained_file(root: Path, rel: str | os.PathLike) -> Path | None:
    """``root/rel`` when it is a plain file inside ``root`` reached without any symlink; else None.

    A symlink planted in ``outputs/`` (or a ``..`` in ``rel``) can therefore never make a file
    route serve something outside the folder it serves."""
    try:
        root_real = Path(root).resolve(strict=True)
        candidate = Path(os.path.abspath(root_real / rel))
        if not candidate.is_relative_to(root_real):
            return None
        real = candidate.resolve(strict=True)
        if real != candidate or not real.is_file():
            return None
        return real
    except (OSError, RuntimeError, ValueError):
        return None
