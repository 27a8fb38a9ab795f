"""Projects as a caller sees them: the one place project access is decided.

A project belongs to the user who created, duplicated or imported it (``ProjectOwner``). The
owner and admins may change and render it. A project with no owner (the built-in samples, and
projects made before owners were recorded) is shared: everyone may read and duplicate it, only
admins may change or render it. Another user's project is simply "not found".
"""

from __future__ import annotations

import time

from profiles.store import ProjectStore

from .access import Principal, not_found
from .db import ProjectOwner, connection
from core.errors import Forbidden


class ProjectAccess:
    def __init__(self, store: ProjectStore):
        self.store = store

    def owner(self, project_id: str) -> str | None:
        with connection():
            row = ProjectOwner.get_or_none(ProjectOwner.project == project_id)
        return row.user if row else None

    def owners(self) -> dict[str, str]:
        with connection():
            return {r.project: r.user for r in ProjectOwner.select()}

    def set_owner(self, project_id: str, principal: Principal) -> None:
        with connection():
            if not ProjectOwner.update(user=principal.user).where(ProjectOwner.project == project_id).execute():
                ProjectOwner.create(project=project_id, user=principal.user, created_at=time.time())

    def forget(self, project_id: str) -> None:
        with connection():
            ProjectOwner.delete().where(ProjectOwner.project == project_id).execute()

    # --- decisions -----------------------------------------------------------------------
    def can_read(self, project_id: str, principal: Principal, owners: dict | None = None) -> bool:
        owner = (owners if owners is not None else {project_id: self.owner(project_id)}).get(project_id)
        return principal.admin or owner is None or owner == principal.user

    def check_read(self, project_id: str, principal: Principal) -> str:
        if not isinstance(project_id, str) or not self.store.exists(project_id) \
                or not self.can_read(project_id, principal):
            raise not_found("project", "项目", project_id)
        return project_id

    def check_write(self, project_id: str, principal: Principal) -> str:
        self.check_read(project_id, principal)
        if principal.admin or self.owner(project_id) == principal.user:
            return project_id
        raise Forbidden("This project is shared read-only; duplicate it to make your own copy.",
                        "这是共享的只读项目；请先复制一份到自己名下。")

    # --- what a caller may list ---------------------------------------------------------------
    def summaries(self, principal: Principal) -> list[dict]:
        owners = self.owners()
        out = []
        for summary in self.store.summaries():
            if self.can_read(summary["id"], principal, owners):
                owner = owners.get(summary["id"])
                out.append({**summary, "owner": owner, "writable": principal.admin or owner == principal.user})
        return out

    # --- creating (the new project is the caller's) -----------------------------------------
    def create(self, project_id: str, title: str, principal: Principal, **config):
        project = self.store.create(project_id, title, **config)
        self.set_owner(project.id, principal)
        return project

    def duplicate(self, source_id: str, new_id: str | None, principal: Principal):
        self.check_read(source_id, principal)
        project = self.store.duplicate(source_id, new_id)
        self.set_owner(project.id, principal)
        return project

    def imported(self, project_id: str, principal: Principal) -> str:
        self.set_owner(project_id, principal)
        return project_id

    def scoped(self, principal: Principal) -> "ScopedStore":
        """The project store as ``principal`` may use it (reads and writes checked per project)."""
        return ScopedStore(self, principal)


class ScopedStore:
    """``ProjectStore``'s methods, each checked for one caller: reads need read access to the
    project named first, changes need write access; anything not listed here is refused."""

    READS = frozenset({"get", "folder", "exists"})
    WRITES = frozenset({"update_config", "edit_characters", "edit_scenes", "upsert_scene", "move_scene",
                        "remove_scene", "upsert_character", "remove_character", "add_asset"})

    def __init__(self, access: ProjectAccess, principal: Principal):
        self._access = access
        self.principal = principal

    def summaries(self) -> list[dict]:
        return self._access.summaries(self.principal)

    def create(self, project_id: str, title: str, **config):
        return self._access.create(project_id, title, self.principal, **config)

    def duplicate(self, source_id: str, new_id: str | None = None):
        return self._access.duplicate(source_id, new_id, self.principal)

    def __getattr__(self, name: str):
        if name not in self.READS and name not in self.WRITES:
            raise AttributeError(f"ScopedStore has no '{name}'")
        method = getattr(self._access.store, name)
        check = self._access.check_read if name in self.READS else self._access.check_write

        def checked(project_id, *args, **kwargs):
            check(project_id, self.principal)
            return method(project_id, *args, **kwargs)

        return checked
