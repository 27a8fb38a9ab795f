"""API keys and who is calling.

A key looks like ``xy_<43 url-safe characters>``. It is shown once when created; the table
keeps its SHA-256, a short hint and the user it belongs to. ``KeyStore.verify`` turns a key
into a ``Principal`` (cached for a moment so a busy client does not hit the database on every
request; a revoke in this process clears the cache at once, one from another process takes
effect within ``CACHE_S`` seconds).

Users are names (``[A-Za-z0-9][A-Za-z0-9_.-]*``); their quotas live in
``<workspace>/users/<name>.yaml`` (see ``app.api.quotas``). Admin rights come from the key
(``keys create --admin``) or from ``admin: true`` in the user's YAML. ``LOCAL`` is the person
at the machine: no key, on a loopback bind, sees everything.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import threading
import time

from app.access import LOCAL, LOCAL_USER, Principal, principal_of  # noqa: F401 (re-exported)
from app.db import connection
from core.errors import NotFound, ValidationError

from .models import ApiKey, ApiSession

KEY_PREFIX = "xy_"
CACHE_S = 2.0
SESSION_S = 30 * 86400.0
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")




def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_user_name(user: str) -> str:
    user = (user or "").strip()
    if not USER_NAME.match(user):
        raise ValidationError("User names use letters, digits, '_', '-' and '.', start with a letter or digit, "
                              "and have at most 64 characters.",
                              "用户名只能包含字母、数字、“_”“-”“.”，以字母或数字开头，最多 64 个字符。")
    if user == LOCAL_USER:
        raise ValidationError(f"'{LOCAL_USER}' is reserved for the person at this machine; pick another name.",
                              f"“{LOCAL_USER}”保留给本机用户，请换一个名字。")
    return user


class KeyStore:
    """Create, list, revoke and verify API keys. ``is_admin_user(name)`` adds YAML admins."""

    def __init__(self, is_admin_user=None):
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._active: tuple[float, bool] | None = None
        self._lock = threading.Lock()
        self._is_admin_user = is_admin_user or (lambda name: False)

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._active = None

    def create(self, user: str, *, admin: bool = False, label: str = "") -> tuple[ApiKey, str]:
        """A new key for ``user``: returns (row, the key itself — show it once, never store it)."""
        user = check_user_name(user)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with connection():
            row = ApiKey.create(id=secrets.token_hex(6), user=user, digest=digest(key), hint=key[:7],
                                label=(label or "")[:200], admin=bool(admin), created_at=time.time())
        self._forget()
        return row, key

    def list(self, user: str | None = None, include_revoked: bool = True) -> list[ApiKey]:
        with connection():
            query = ApiKey.select().order_by(ApiKey.created_at.desc())
            if user:
                query = query.where(ApiKey.user == user)
            if not include_revoked:
                query = query.where(ApiKey.revoked_at.is_null())
            return list(query)

    def revoke(self, key_id: str) -> ApiKey:
        key_id = (key_id or "").strip()
        with connection():
            row = ApiKey.get_or_none(ApiKey.id == key_id) if re.fullmatch(r"[0-9a-f]{12}", key_id) else None
            if row is None:
                raise NotFound(f"No API key with id '{key_id[:32]}'. `keys list` shows the ids.",
                               f"找不到 ID 为“{key_id[:32]}”的密钥。用 `keys list` 查看。")
            if row.revoked_at is None:
                row.revoked_at = time.time()
                ApiKey.update(revoked_at=row.revoked_at).where(ApiKey.id == row.id).execute()
            ApiSession.delete().where(ApiSession.key_id == row.id).execute()
        self._forget()
        return row

    def any_active(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._active and now - self._active[0] < CACHE_S:
                return self._active[1]
        with connection():
            active = ApiKey.select().where(ApiKey.revoked_at.is_null()).exists()
        with self._lock:
            self._active = (now, active)
        return active

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(hit, principal) from the cache only: lets async callers skip a thread hop."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest(key))
        if hit and now - hit[0] < CACHE_S:
            return True, hit[1]
        return False, None

    def _principal(self, row: ApiKey | None) -> Principal | None:
        if row is None or row.revoked_at is not None:
            return None
        now = time.time()
        if not row.last_used_at or now - row.last_used_at > 60:
            ApiKey.update(last_used_at=now).where(ApiKey.id == row.id).execute()
        return Principal(user=row.user, admin=row.admin or bool(self._is_admin_user(row.user)), key_id=row.id)

    def _remember(self, d: str, principal: Principal | None) -> Principal | None:
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[d] = (time.monotonic(), principal)
        return principal

    def verify(self, key: str) -> Principal | None:
        """The principal for a key, or None when it is unknown or revoked."""
        if not key or len(key) > 256:
            return None
        hit, principal = self.cached(key)
        if hit:
            return principal
        d = digest(key)
        with connection():
            return self._remember(d, self._principal(ApiKey.get_or_none(ApiKey.digest == d)))

    # --- UI sessions: a login with a key gives a cookie token, never the key itself ---------
    def open_session(self, key: str) -> str | None:
        """A new session token for a valid key (None when the key is not valid)."""
        if self.verify(key) is None:
            return None
        token = secrets.token_urlsafe(32)
        now = time.time()
        with connection():
            row = ApiKey.get(ApiKey.digest == digest(key))
            ApiSession.delete().where(ApiSession.expires_at < now).execute()
            ApiSession.create(id=digest("session:" + token), key_id=row.id, created_at=now,
                              expires_at=now + SESSION_S)
        return token

    def verify_session(self, token: str) -> Principal | None:
        if not token or len(token) > 256:
            return None
        hit, principal = self.cached("session:" + token)
        if hit:
            return principal
        d = digest("session:" + token)
        with connection():
            session = ApiSession.get_or_none(ApiSession.id == d)
            row = None
            if session is not None and session.expires_at > time.time():
                row = ApiKey.get_or_none(ApiKey.id == session.key_id)
            return self._remember(d, self._principal(row))

    def close_session(self, token: str) -> None:
        with connection():
            ApiSession.delete().where(ApiSession.id == digest("session:" + (token or ""))).execute()
        self._forget()


def describe(row: ApiKey) -> dict:
    """A key as lists show it: never the key, only its id and first characters."""
    from app.jobs import iso

    return {"id": row.id, "user": row.user, "hint": row.hint + "…", "label": row.label, "admin": row.admin,
            "created_at": iso(row.created_at), "last_used_at": iso(row.last_used_at),
            "revoked_at": iso(row.revoked_at), "active": row.revoked_at is None}
