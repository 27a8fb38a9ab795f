"""Character Design: portrait candidates for a character without a reference photo.

``design()`` submits ordinary image jobs of the caller (jobs making up to the engine's ``num_images``
bound each when it has that field, else N jobs with consecutive seeds) from the character's appearance prompt and the
project's style; the job ids are kept per character in ``<project>/design/<character>.json`` so a
re-roll of one character replaces only its own candidates. ``pick()`` copies the chosen image into
``assets/<character>/`` (``ProjectStore.add_asset``) and puts it first in ``reference_images``:
from then on the still engine (InstantID) keeps that face.
"""

from __future__ import annotations

import json
import secrets
import time

from profiles.schema import SLUG
from profiles.styles import STYLES

from .access import Principal
from .projects import ProjectAccess
from core.errors import NotFound, ValidationError
from core.media import atomic_write_json

DEFAULT_COUNT = 4
MAX_COUNT = 8
PORTRAIT = "portrait of one person, head and shoulders, face clearly visible, looking at the camera, plain background"


def _upper(field) -> int | None:
    """A number field's ``le`` bound, if it has one."""
    return next((int(m.le) for m in field.metadata if getattr(m, "le", None) is not None), None)


class DesignService:
    def __init__(self, service, store):
        self.service = service
        self.store = store
        self.access = ProjectAccess(store)

    # --- state -----------------------------------------------------------------------------
    def _file(self, project_id: str, character_id: str):
        return self.store.get(project_id).dir / "design" / f"{character_id}.json"

    def _character(self, project_id: str, character_id: str):
        project = self.store.get(project_id)
        if not isinstance(character_id, str) or not SLUG.match(character_id) \
                or character_id not in project.characters:
            known = ", ".join(project.characters) or "none yet"
            raise NotFound(f"Project '{project_id}' has no character '{character_id}' (it has: {known}).",
                           f"项目“{project_id}”没有角色“{character_id}”（现有：{known}）。")
        return project, project.characters[character_id]

    def engine_id(self, engine: str | None = None) -> str:
        engines = self.service.engines
        if engine:
            if engine not in engines or "t2i" not in engines[engine].tasks:
                raise ValidationError(f"{engine} does not make images from text; choose an image engine (sdxl).",
                                      f"{engine} 不能由文字生成图片；请选择图片引擎（sdxl）。")
            return engine
        for eid in ("sdxl", *sorted(engines)):
            if eid in engines and "t2i" in engines[eid].tasks and engines[eid].available()[0]:
                return eid
        raise ValidationError("No image engine is available for Design (install SDXL in Settings or add a cloud key).",
                              "没有可用的图片引擎来设计角色（请在“设置”中安装 SDXL 或添加云端密钥）。")

    def prompt(self, project, character) -> str:
        style = STYLES.get(project.config.style)
        style_words = style.prompt if style is not None else ""
        words = [character.prompt or character.name, PORTRAIT, style_words]
        return ", ".join(w.strip(", ") for w in words if w and w.strip())

    # --- actions -----------------------------------------------------------------------------
    def design(self, project_id: str, character_id: str, principal: Principal, count: int = DEFAULT_COUNT,
               engine: str | None = None, params: dict | None = None) -> dict:
        """Submit ``count`` candidates for one character (replacing its earlier candidates only)."""
        self.access.check_write(project_id, principal)
        project, character = self._character(project_id, character_id)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise ValidationError(f"Design makes 1 to {MAX_COUNT} candidates.", f"一次可设计 1 到 {MAX_COUNT} 个候选。")
        eid = self.engine_id(engine)
        fields = self.service.engines[eid].Params.model_fields
        base = {k: v for k, v in {**project.config.engine_params.get(eid, {}), **(params or {})}.items() if k in fields}
        if "width" in fields and "height" in fields:
            base.setdefault("width", 768)
            base.setdefault("height", 1024)
        seed = secrets.randbelow(2**31)
        request = {"engine": eid, "prompt": self.prompt(project, character), "project": project_id,
                   "negative_prompt": project.config.negative_prompt}
        jobs = []
        if "num_images" in fields:
            per_job = _upper(fields["num_images"]) or count  # a cloud model makes at most 4 per task
            for start in range(0, count, per_job):
                p = {**base, "num_images": min(per_job, count - start),
                     **({"seed": seed + start} if "seed" in fields else {})}
                jobs.append(self.service.submit({**request, "params": p}, principal, source="design").id)
        else:
            for i in range(count):
                p = {**base, **({"seed": seed + i} if "seed" in fields else {})}
                jobs.append(self.service.submit({**request, "params": p}, principal, source="design").id)
        atomic_write_json(self._file(project_id, character_id),
                          {"jobs": jobs, "engine": eid, "count": count, "at": time.time(), "user": principal.user})
        return self.candidates(project_id, character_id, principal)

    def candidates(self, project_id: str, character_id: str, principal: Principal) -> dict:
        """{character, jobs: [{id, status, progress}], images: [{ref, file}], reference} for the caller."""
        self.access.check_read(project_id, principal)
        project, character = self._character(project_id, character_id)
        path = self._file(project_id, character_id)
        state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"jobs": []}
        jobs, images = [], []
        for job_id in state.get("jobs", []):
            try:
                job = self.service.get(job_id, principal)
            except NotFound:
                continue
            jobs.append({"id": job.id, "status": job.status, "progress": job.progress, "error": job.error})
            if job.status == "succeeded":
                images += [{"ref": f"{job.id}#{i}", "file": o["file"]}
                           for i, o in enumerate(job.outputs) if o.get("kind") == "image"]
        return {"character": character_id, "jobs": jobs, "images": images,
                "reference": character.reference_images[0] if character.reference_images else None}

    def pick(self, project_id: str, character_id: str, ref: str, principal: Principal) -> dict:
        """Make candidate ``<job>#<n>`` the character's reference face (first in reference_images)."""
        self.access.check_write(project_id, principal)
        _project, character = self._character(project_id, character_id)
        path = self._file(project_id, character_id)
        state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"jobs": []}
        if not isinstance(ref, str) or ref.partition("#")[0] not in state.get("jobs", []):
            raise ValidationError(f"'{ref}' is not one of {character_id}'s Design candidates; design again.",
                                  f"“{ref}”不是角色 {character_id} 的设计候选；请重新设计。")
        image = self.service.image_of_job(ref, principal)
        asset = self.store.add_asset(project_id, character_id, image.read_bytes(), stem="design")
        refs = [asset] + [r for r in character.reference_images if r != asset]
        self.store.upsert_character(project_id, character_id, {"reference_images": refs[:8]})
        return {"character": character_id, "reference": asset}
