"""Response headers that keep a served file from becoming a page, and the gate on Gradio's
file route.

``/gradio_api/file=<path>`` serves only files inside Gradio's own cache (uploads, and the copies
Gradio makes of what a handler returns); anything else of the workspace (the database, config,
project YAML, outputs by their workspace path) is "not found" here: outputs go through
``/files/<task_id>/<name>``, which checks ownership.

Every response gets ``X-Content-Type-Options: nosniff``. The UI's pages get a
Content-Security-Policy. A served file keeps ``inline`` only when it is an image, video or audio
type that cannot run script (PNG, JPEG, WebP, GIF, MP4, WebM, WAV, MP3...); anything else (HTML,
SVG, text) is sent as ``application/octet-stream`` with ``Content-Disposition: attachment`` and a
``sandbox`` policy, so opening it can never run script in the studio's origin.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

from starlette.responses import JSONResponse

INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "video/webm",
                          "audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg",
                          "audio/webm", "audio/flac"})
PAGE_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
            "font-src 'self' data:; connect-src 'self' ws: wss:; worker-src 'self' blob:; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'self'")
FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'"


def gradio_cache_roots() -> list[Path]:
    import tempfile

    roots = [Path(tempfile.gettempdir()) / "gradio"]
    if os.environ.get("GRADIO_TEMP_DIR"):
        roots.append(Path(os.environ["GRADIO_TEMP_DIR"]))
    return [r.resolve() for r in roots]


def file_route_target(path: str) -> str | None:
    """The file a Gradio file-route path names (``.../file=<target>``), or None for other routes."""
    head, sep, target = path.partition("/file=")
    if not sep or head not in ("", "/gradio_api"):
        return None
    return unquote(target)


def servable(target: str) -> bool:
    """Only plain files inside Gradio's cache, reached without a symlink."""
    if not target or "\0" in target or target.startswith(("http:", "https:", "//")):
        return False
    try:
        given = Path(target)
        if not given.is_absolute():
            return False
        real = given.resolve(strict=True)
        if real != Path(os.path.abspath(given)) or not real.is_file():
            return False  # a symlink somewhere on the way, or a folder
        return any(real.is_relative_to(root) for root in gradio_cache_roots())
    except (OSError, RuntimeError, ValueError):
        return False


def _header(headers: list, name: bytes) -> bytes | None:
    return next((v for k, v in headers if k.lower() == name), None)


def harden(headers: list, *, file_route: bool, page: bool) -> list:
    """Return the response headers with the studio's policy applied."""
    headers = [(k, v) for k, v in headers if k.lower() != b"x-content-type-options"]
    headers.append((b"x-content-type-options", b"nosniff"))
    ctype = (_header(headers, b"content-type") or b"").split(b";")[0].strip().lower().decode("latin-1")
    if file_route:
        drop = {b"content-type", b"content-disposition", b"content-security-policy"}
        inline = ctype in INLINE_TYPES
        headers = [(k, v) for k, v in headers if k.lower() not in drop]
        headers += [(b"content-type", (ctype if inline else "application/octet-stream").encode()),
                    (b"content-disposition", b"inline" if inline else b"attachment"),
                    (b"content-security-policy", FILE_CSP.encode())]
    elif page and ctype == "text/html":
        headers = [(k, v) for k, v in headers if k.lower() != b"content-security-policy"]
        headers += [(b"content-security-policy", PAGE_CSP.encode()), (b"x-frame-options", b"SAMEORIGIN"),
                    (b"referrer-policy", b"same-origin")]
    return headers


class SecureHeadersMiddleware:
    """ASGI: gate Gradio's file route, and apply ``harden`` to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path") or "/"
        target = file_route_target(path)
        if target is not None and not servable(target):
            await JSONResponse({"detail": "File not found."}, 404,
                               headers={"X-Content-Type-Options": "nosniff"})(scope, receive, send)
            return
        file_route = target is not None or path.startswith("/files/") or path.startswith("/videos/")

        async def send_hardened(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": harden(list(message.get("headers", [])),
                                                        file_route=file_route, page=True)}
            await send(message)

        await self.app(scope, receive, send_hardened)
