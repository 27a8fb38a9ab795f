"""Seed 000 helpers for ``POST /api/v1/images/generate``: fitting parameters to an engine and
looking up a character (``character_id``) in the projects.

Multi-scene videos (``POST /api/v1/videos/generate``) are episodes: see ``app.episodes.render_video_request``.
"""

from __future__ import annotations

from core.errors import NotFound
from profiles.store import ProjectStore


def keep_known(engine, params: dict) -> dict:
    """The entries of ``params`` that the engine's parameter model knows and that are set."""
    fields = engine.Params.model_fields
    return {k: v for k, v in params.items() if k in fields and v is not None}


def character_inputs(settings, character_id: str) -> tuple[list[str], str]:
    """(reference image paths, prompt fragment) of a character defined in any project."""
    project, character = ProjectStore(settings.projects_dir).find_character(character_id)
    faces = project.faces(character_id)
    if not faces:
        raise NotFound(f"Character '{character_id}' (project '{project.id}') has no reference image that exists. "
                       "Add reference_images under the project's assets/.",
                       f"角色“{character_id}”（项目“{project.id}”）没有可用的参考图片，请在项目的 assets/ 下补充 "
                       "reference_images。")
    return [str(p.resolve()) for p in faces], character.prompt
