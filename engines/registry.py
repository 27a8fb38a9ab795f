"""The static engine registry. Adding an engine = one file + one line here.

Imports are explicit so PyInstaller sees every engine; engine modules import nothing heavy
at module level, so building the registry is instant.
"""

from __future__ import annotations

from engines.base import Engine
from engines.local.wan_t2v import WanT2VEngine

ENGINE_CLASSES: tuple[type[Engine], ...] = (
    WanT2VEngine,
)


def build_engines(settings, secrets=None, cache=None) -> dict[str, Engine]:
    """One instance per engine class, sharing the pipeline cache among local engines."""
    engines: dict[str, Engine] = {}
    for cls in ENGINE_CLASSES:
        if cls.kind == "local":
            engines[cls.id] = cls(settings, secrets, cache=cache)
        else:
            engines[cls.id] = cls(settings, secrets)
    return engines
