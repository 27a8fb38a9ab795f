"""The UI login page: people log in to the Gradio UI with their API key.

``GET /auth/login`` shows a one-field form; ``POST /auth/login`` checks the key and sets the
``xianying_session`` cookie — a random session token, never the key (HttpOnly, SameSite=Lax,
Secure over HTTPS; 30 days; revoking the key ends its sessions); ``GET /auth/logout`` ends the
session.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.access import handler

from .auth import SESSION_S
from .middleware import COOKIE

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>仙影 Xianying Studio · 登录 Log in</title>
<style>body{{font-family:system-ui,sans-serif;background:#f6f5f2;display:flex;justify-content:center;
align-items:center;min-height:100vh;margin:0}}form{{background:#fff;padding:2em;border-radius:12px;
box-shadow:0 2px 12px #0002;width:22em}}input{{width:100%;padding:.6em;margin:.6em 0;box-sizing:border-box}}
button{{width:100%;padding:.6em;background:#7a4e2d;color:#fff;border:0;border-radius:6px}}
.err{{color:#b00020}}small{{color:#666}}</style></head><body>
<form method="post" action="/auth/login"><h2>仙影 · Xianying Studio</h2>
<label>API 密钥 / API key<input type="password" name="key" autocomplete="current-password" autofocus required></label>
<input type="hidden" name="next" value="{next}">{error}<button type="submit">登录 Log in</button>
<p><small>密钥由管理员创建：<code>python launch.py keys create --user 用户名</code><br>
Keys are created by the admin: <code>python launch.py keys create --user NAME</code></small></p></form></body></html>"""


def _safe_next(value: str | None) -> str:
    value = (value or "/").strip()
    if not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 2000:
        return "/"
    return value


def page(next_url: str, error: str = "", status: int = 200) -> HTMLResponse:
    err = f'<p class="err">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(PAGE.format(next=html.escape(_safe_next(next_url), quote=True), error=err),
                        status_code=status)


def build(runtime) -> APIRouter:
    router = APIRouter(tags=["login"], include_in_schema=False)

    @router.get("/auth/login")
    @handler("public")
    def login_form(next: str = "/"):
        return page(next)

    @router.post("/auth/login")
    @handler("public")
    async def login(request: Request):
        body = (await request.body())[:8192].decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(body).items() if v}
        key, next_url = form.get("key", "").strip(), _safe_next(form.get("next"))
        token = await anyio.to_thread.run_sync(runtime.keys.open_session, key) if key else None
        if token is None:
            return page(next_url, "密钥无效或已被吊销 · Invalid or revoked key", status=401)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(SESSION_S), path="/", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
        return response

    @router.get("/auth/logout")
    @handler("public")
    def logout(request: Request):
        token = request.cookies.get(COOKIE)
        if token:
            runtime.keys.close_session(token)
        response = RedirectResponse("/auth/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return router
