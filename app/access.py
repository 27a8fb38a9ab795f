"""Who is calling, and what they may do: the one place access is decided.

Every surface (a UI event handler, a Gradio API endpoint, a REST route, a file route) turns its
request into a ``Principal`` and hands it to the job service, the episode service or an admin
action; those decide. A surface never compares user names itself.

    Principal            the caller: a user name, admin or not, the key it used
    LOCAL                the person at a loopback studio with no keys: admin, user "local"
    principal_of(req)    the caller the security middleware stored in the request scope
    caller(req)          the same, failing closed (401) when there is none
    require_admin(p, what_en, what_zh)   403 unless admin
    handler(access)      marks (and for "admin" enforces) an access decision on an event handler;
                         tests/security/test_every_route.py fails on any handler without one

Trust levels are written down in docs/threat-model.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from core.errors import Forbidden, NotFound, Unauthorized

LOCAL_USER = "local"
ACCESS_KINDS = ("public", "user", "admin")


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool = False
    key_id: str | None = None
    anonymous: bool = False
    system: bool = False  # the studio itself, acting on a checked plan (may name workspace files)

    @property
    def trusted(self) -> bool:
        """May name files inside the workspace as inputs (admins and the studio itself)."""
        return self.admin or self.system

    def can_see(self, owner: str | None) -> bool:
        """May this caller see (and act on) something owned by ``owner``?"""
        return self.admin or (owner is not None and owner == self.user)

    @classmethod
    def acting_for(cls, user: str | None) -> "Principal":
        """The studio acting for ``user`` (an episode submitting its scenes): sees that user's jobs."""
        return SYSTEM if user is None else cls(user=user, system=True)


LOCAL = Principal(user=LOCAL_USER, admin=True, anonymous=True)
SYSTEM = Principal(user=LOCAL_USER, admin=True, system=True)  # the studio's own workers
SCOPE_KEY = "xianying.principal"  # where the security middleware stores the caller


def principal_of(request) -> Principal | None:
    """The caller the security middleware found, from a Starlette or a Gradio request."""
    if request is None:
        return None
    raw = getattr(request, "request", request)  # gr.Request wraps the Starlette request
    scope = getattr(raw, "scope", None)
    if scope is None and isinstance(getattr(raw, "kwargs", None), dict):
        scope = raw.kwargs.get("scope")
    return scope.get(SCOPE_KEY) if isinstance(scope, dict) else None


def caller(request) -> Principal:
    """The caller, or 401: a handler reached without the middleware's decision fails closed."""
    principal = principal_of(request)
    if principal is None:
        raise Unauthorized("Log in first (or send 'Authorization: Bearer <key>').",
                           "请先登录（或发送 'Authorization: Bearer <密钥>'）。")
    return principal


def require_admin(principal: Principal, what_en: str, what_zh: str) -> None:
    if not principal.admin:
        raise Forbidden(f"Only an admin can {what_en}.", f"只有管理员可以{what_zh}。")


def not_found(kind_en: str, kind_zh: str, ident) -> NotFound:
    """The one answer for "missing" and "not yours": the two must look the same."""
    shown = str(ident)[:64]
    return NotFound(f"No {kind_en} with id '{shown}'.", f"找不到{kind_zh}“{shown}”。")


def handler(access: str, what_en: str = "do this", what_zh: str = "执行此操作"):
    """Decorate a UI event handler or API function with its access decision.

    ``public``: touches nothing that belongs to anyone (pure UI state, engine lists);
    ``user``: decides per object through the services, with ``caller(request)``;
    ``admin``: refused here for non-admins, before the function runs.
    """
    if access not in ACCESS_KINDS:
        raise ValueError(f"access must be one of {ACCESS_KINDS}")

    def mark(fn):
        if access != "admin":
            fn.__access__ = access
            return fn

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            request = kwargs.get("request")
            if request is None:
                request = next((a for a in args if hasattr(a, "request") or hasattr(a, "scope")), None)
            require_admin(caller(request), what_en, what_zh)
            return fn(*args, **kwargs)

        wrapper.__access__ = access
        return wrapper

    return mark


def access_of(fn) -> str | None:
    """The access decision recorded on ``fn`` (through wrappers and partials), or None."""
    seen = 0
    while fn is not None and seen < 10:
        mark = getattr(fn, "__access__", None)
        if mark:
            return mark
        fn = getattr(fn, "__wrapped__", None) or getattr(fn, "func", None)
        seen += 1
    return None
