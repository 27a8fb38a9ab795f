"""One ASGI middleware in front of everything (REST routes and the mounted Gradio app).

For each request it works out the caller (``Principal``) and stores it in the scope:

* ``Authorization: Bearer <key>`` (scripts, gradio_client ``headers=``) or the
  ``xianying_session`` cookie set by the UI login page (``/auth/login``; a session token, not
  the key). A key or session that is given but unknown, expired or revoked is refused with 401
  everywhere except public paths.
* No key: the person at the machine (``LOCAL``, admin) when the runtime does not require one
  (see ``ApiRuntime.auth_required``); otherwise 401 — or, for a browser asking for the UI, a
  redirect to the login page.

REST requests with a key are rate limited per key (429 + ``Retry-After``); REST request
bodies larger than ``max_body_mb`` are refused with 413 before any route sees them.
Public: health checks, the OpenAPI docs, the login page, Gradio's static assets, and
``/metrics`` when ``public_metrics`` is on.
"""

from __future__ import annotations

import math
from urllib.parse import quote

import anyio
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse

from .auth import LOCAL

from app.access import SCOPE_KEY as PRINCIPAL  # the scope key (access.principal_of reads it)
COOKIE = "xianying_session"
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/videos/health", "/health", "/docs", "/docs/oauth2-redirect",
                          "/redoc", "/openapi.json", "/auth/login", "/auth/logout"})
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/favicon.ico", "/manifest.json", "/pwa_icon", "/robots.txt",
                   "/theme.css")
REST_PREFIXES = ("/api/v1/", "/video/", "/videos/", "/aigc/", "/files/", "/auth/")
REST_PATHS = frozenset({"/metrics", "/health"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_rest(path: str) -> bool:
    return path in REST_PATHS or path.startswith(REST_PREFIXES)


def credentials(headers: Headers) -> tuple[str | None, bool]:
    """(credential, from_cookie): the bearer key, else the login session token."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
    return (cookie, True) if cookie else (None, False)


def _zh(headers: Headers) -> bool:
    return headers.get("accept-language", "").split(",")[0].strip().lower().startswith("zh")


class SecurityMiddleware:
    def __init__(self, app, runtime):
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path") or "/"
        headers = Headers(scope=scope)
        rest = is_rest(path)
        cfg = self.runtime.config
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or (path == "/metrics" and cfg.public_metrics)
        key, from_cookie = credentials(headers)
        principal = None
        if key:
            keys = self.runtime.keys
            hit, principal = keys.cached("session:" + key if from_cookie else key)
            if not hit:
                check = keys.verify_session if from_cookie else keys.verify
                principal = await anyio.to_thread.run_sync(check, key)
            if principal is None and not public:
                en = "Invalid or revoked API key." + (" Log in again." if from_cookie else "")
                zh = "API 密钥无效或已被吊销。" + ("请重新登录。" if from_cookie else "")
                await self.deny(scope, receive, send, headers, rest, en, zh, clear_cookie=from_cookie)
                return
        if principal is None:
            required = self.runtime.auth_required(rest)  # no I/O but a cached key count (every 2 s)
            if required and not public:
                await self.deny(scope, receive, send, headers, rest,
                                "Missing API key: send 'Authorization: Bearer <key>' (create keys with "
                                "`python launch.py keys create --user NAME` or in Settings).",
                                "缺少 API 密钥：请发送 'Authorization: Bearer <密钥>'（用 `python launch.py keys "
                                "create --user 用户名` 或在设置页创建）。")
                return
            principal = None if required else LOCAL
        scope[PRINCIPAL] = principal
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if rest and not public and principal is not None and principal.key_id:
            wait = self.runtime.limiter.hit(principal.key_id)
            if wait:
                retry = max(1, math.ceil(wait))
                per_min = cfg.rate_limit.per_minute
                body = {"detail": (f"Rate limit exceeded: {per_min:g} requests per minute per key. "
                                   f"Retry in {retry} s.") if not _zh(headers) else
                        f"请求过于频繁：每个密钥每分钟 {per_min:g} 次。请 {retry} 秒后重试。"}
                await JSONResponse(body, 429, headers={"Retry-After": str(retry)})(scope, receive, send)
                return
        if rest and scope.get("method") in BODY_METHODS:
            receive = await self.limit_body(scope, receive, send, headers, cfg.max_body_bytes)
            if receive is None:
                return
        await self.app(scope, receive, send)

    async def limit_body(self, scope, receive, send, headers: Headers, limit: int):
        """Read the body (up to ``limit``) and hand it on; None when refused with 413."""
        length = headers.get("content-length")
        too_big = JSONResponse({"detail": f"Request body too large: the limit is {limit // 2**20} MB "
                                          "(max_body_mb in rest.yaml)."}, 413)
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            await too_big(scope, receive, send)
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_big(scope, receive, send)
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def deny(self, scope, receive, send, headers: Headers, rest: bool, en: str, zh: str,
                   clear_cookie: bool = False) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        wants_page = (not rest and scope.get("method") == "GET" and "text/html" in headers.get("accept", ""))
        if wants_page:
            target = scope.get("path", "/") + (f"?{scope['query_string'].decode('latin-1')}"
                                               if scope.get("query_string") else "")
            response = RedirectResponse(f"/auth/login?next={quote(target, safe='')}", status_code=303)
        else:
            response = JSONResponse({"detail": zh if _zh(headers) else en}, 401,
                                    headers={"WWW-Authenticate": "Bearer"})
        if clear_cookie:
            response.delete_cookie(COOKIE, path="/")
        await response(scope, receive, send)


def gradio_user(request) -> str | None:
    """``auth_dependency`` for the mounted Gradio app: the caller the middleware found."""
    principal = request.scope.get(PRINCIPAL)
    return principal.user if principal is not None else None
