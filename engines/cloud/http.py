"""HTTP plumbing shared by every cloud adapter: one client, retries, error mapping, downloads.

Stable API (other adapters import these names; keep their signatures):

``get_client() -> httpx.Client``
    The process-wide client (connection pool shared by all adapters and io workers; thread-safe).
    Pass full URLs. Nothing is logged by us except method, host and path; never headers.
``make_client(**kwargs) -> httpx.Client``
    A fresh client with the same defaults (timeouts, limits), for code that needs its own.
``timeouts(read=None) -> httpx.Timeout``
    Connect 10 s, read ``XIANYING_HTTP_TIMEOUT`` (default 60 s), write 60 s, pool 30 s.
``send_json(method, url, *, vendor, headers=None, json=None, params=None, error_of=None,
            idempotent=True, timeout=None) -> dict``
    One request, errors translated once: transport errors and timeouts become a retryable
    ``ProviderError`` (for ``idempotent=False`` a timeout after the request may have been
    delivered is *not* retryable: the vendor may have created the task); HTTP >= 400 goes
    through ``error_of(response)`` (the adapter's vendor-body mapping; default
    ``http_error``); a 2xx body that is not a JSON object is a retryable "bad JSON" error.
``with_retries(fn, *, what="request", attempts=None, max_wait=None) -> result``
    Calls ``fn()`` and retries it with bounded exponential backoff + jitter (tenacity) on
    ``ProviderError(retryable=True)`` and httpx timeouts / connection errors only. A
    ``retry_after`` field on the error (seconds) is honoured up to ``max_wait``. Defaults
    come from env: ``XIANYING_RETRY_ATTEMPTS`` (3), ``XIANYING_RETRY_MAX_WAIT`` (8 s),
    ``XIANYING_RETRY_INITIAL`` (0.5 s). The last error is re-raised as is.
``is_retryable(exc) -> bool``
``http_error(vendor, status, code=None, message=None, *, retryable=None, hint_en="",
             hint_zh="", retry_after=None) -> ProviderError``
    Generic mapping: 408/409/425/429/5xx → retryable; 401/403 → key hint; 400 → parameter
    hint. Adapters call it with the code/message parsed from their own error body.
``retry_after_of(response) -> float | None``   ``Retry-After`` in seconds, when given.
``scrub(text, *secrets) -> str``   removes secrets (and ``Bearer ...``) from vendor text.
``image_payload(image, *, vendor, max_bytes, raw_base64=False) -> str``
    URL passed through; a file becomes a data URI (or raw base64), with a clear size error.
``check_image_size(image, *, vendor, max_bytes)``   the size check alone (for ``check()``).
``result_steps(url, dest_dir, prefix, index, *, kind="video", attempts=None, vendor="storage")``
    A result's download as steps (``engines.cloud.steps``: ``steps.run`` on an io worker, ``await
    steps.arun`` on the cloud loop, under the vendor's request slots). Streams to a temp file in
    ``dest_dir``; checks HTTP status (403/404/410 = expired link, not retried), Content-Length
    (truncation retried) and the signature (MP4, or PNG / JPEG / WebP for ``kind="image"``); renames
    to ``engines.base.output_name(prefix, index, ext)``. ``XIANYING_DOWNLOAD_ATTEMPTS`` (3).
(What a downloaded file becomes, an ``Output`` with its size, audio and thumbnail:
``engines/cloud/results.py``.)
``poll_scale() -> float``   ``XIANYING_POLL_SCALE`` (default 1.0): multiply poll delays by it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from core.errors import ProviderError, ValidationError
from core.media import is_mp4
from core.platform import replace_with_retry
from engines.base import ImageInput, output_name

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
EXPIRED_STATUS = frozenset({401, 403, 404, 410})
USER_AGENT = "xianying-studio/0.1"

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "") or default))
    except ValueError:
        return default


def poll_scale() -> float:
    return max(0.0, _env_float("XIANYING_POLL_SCALE", 1.0))


# --- clients ------------------------------------------------------------------------
def timeouts(read: float | None = None) -> httpx.Timeout:
    read = read if read is not None else _env_float("XIANYING_HTTP_TIMEOUT", 60.0)
    return httpx.Timeout(connect=min(10.0, read), read=read, write=60.0, pool=30.0)


def make_client(**kwargs: Any) -> httpx.Client:
    kwargs.setdefault("timeout", timeouts())
    kwargs.setdefault("limits", httpx.Limits(max_connections=64, max_keepalive_connections=16))
    kwargs.setdefault("headers", {"User-Agent": USER_AGENT})
    kwargs.setdefault("follow_redirects", True)
    kwargs.setdefault("trust_env", True)  # HTTPS_PROXY / NO_PROXY from the environment, as usual
    return httpx.Client(**kwargs)


def get_client() -> httpx.Client:
    global _client
    with _client_lock:
        if _client is None or _client.is_closed:
            _client = make_client()
        return _client


# --- errors -------------------------------------------------------------------------
def scrub(text: str | None, *secrets: str | None) -> str:
    out = str(text or "")
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return re.sub(r"(?i)bearer\s+[A-Za-z0-9._\-]+", "Bearer ***", out)


def retry_after_of(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def http_error(vendor: str, status: int, code: str | None = None, message: str | None = None, *,
               retryable: bool | None = None, hint_en: str = "", hint_zh: str = "",
               retry_after: float | None = None) -> ProviderError:
    retry = (status in RETRYABLE_STATUS) if retryable is None else retryable
    if not hint_en:
        if status in (401, 403):
            hint_en, hint_zh = "Check the API key in Settings.", "请在设置中检查 API 密钥。"
        elif status == 429:
            hint_en, hint_zh = "Too many requests; try again later.", "请求过多，请稍后再试。"
        elif status >= 500:
            hint_en, hint_zh = "The provider had a problem; try again later.", "服务商出现故障，请稍后再试。"
        elif status == 400:
            hint_en, hint_zh = "Check the parameters.", "请检查参数。"
    what = f"HTTP {status}" + (f", {code}" if code else "")
    detail = f": {message}" if message else ""
    en = f"{vendor} refused the request ({what}){detail}. {hint_en}".strip()
    zh = f"{vendor} 拒绝了请求（{what}）{('：' + message) if message else ''}。{hint_zh}".strip()
    return ProviderError(en, zh, retryable=retry, vendor_code=code or str(status), http_status=status,
                         retry_after=retry_after)


def transport_error(vendor: str, exc: httpx.HTTPError, *, idempotent: bool = True) -> ProviderError:
    """A timeout or connection failure, said plainly; never includes request headers."""
    kind = type(exc).__name__
    sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    if not idempotent and sent:
        return ProviderError(
            f"{vendor} did not answer in time ({kind}); the task may have been created anyway. "
            "Check the provider's console before retrying, or a second task may be billed.",
            f"{vendor} 未及时响应（{kind}），任务可能已被创建。重试前请先在服务商控制台确认，否则可能重复计费。",
            retryable=False, vendor_code="uncertain_create")
    timeout = isinstance(exc, httpx.TimeoutException)
    en = f"{vendor} {'timed out' if timeout else 'could not be reached'} ({kind})."
    zh = f"{vendor} {'响应超时' if timeout else '无法连接'}（{kind}）。"
    return ProviderError(en + " Check the network or try again later.", zh + "请检查网络或稍后再试。",
                         retryable=True, vendor_code="timeout" if timeout else "connection")


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ProviderError):
        return bool(exc.retryable)
    return isinstance(exc, (httpx.TimeoutException, httpx.TransportError))


# --- retries ------------------------------------------------------------------------
def with_retries(fn: Callable[[], T], *, what: str = "request", attempts: int | None = None,
                 max_wait: float | None = None) -> T:
    attempts = attempts or _env_int("XIANYING_RETRY_ATTEMPTS", 3)
    max_wait = max_wait if max_wait is not None else _env_float("XIANYING_RETRY_MAX_WAIT", 8.0)
    initial = min(_env_float("XIANYING_RETRY_INITIAL", 0.5), max_wait)
    backoff = wait_exponential_jitter(initial=initial, max=max_wait, jitter=initial)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "fields", {}).get("retry_after") if exc is not None else None
        return min(float(hinted), max_wait) if hinted is not None else backoff(state)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s failed (%s); retry %d/%d", what, type(exc).__name__, state.attempt_number, attempts - 1)

    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait, retry=retry_if_exception(is_retryable),
                        before_sleep=before_sleep, reraise=True)
    return retrying(fn)


# --- JSON requests ------------------------------------------------------------------
def send_json(method: str, url: str, *, vendor: str, headers: dict | None = None, json: Any = None,
              params: dict | None = None, error_of: Callable[[httpx.Response], ProviderError] | None = None,
              idempotent: bool = True, timeout: httpx.Timeout | None = None) -> dict:
    parts = urlsplit(url)
    try:
        response = get_client().request(method, url, headers=headers, json=json, params=params,
                                        timeout=timeout or timeouts())
    except httpx.HTTPError as exc:
        log.info("%s %s%s: %s", method, parts.netloc, parts.path, type(exc).__name__)
        raise transport_error(vendor, exc, idempotent=idempotent) from exc
    return decode_json(response, vendor=vendor, error_of=error_of)


def decode_json(response: httpx.Response, *, vendor: str,
                error_of: Callable[[httpx.Response], ProviderError] | None = None) -> dict:
    """An answer's JSON object, or the mapped error (shared by ``send_json`` and ``aio.send_json``)."""
    if response.status_code >= 400:
        if error_of is not None:
            raise error_of(response)
        raise http_error(vendor, response.status_code, retry_after=retry_after_of(response))
    try:
        body = response.json()
    except ValueError as exc:
        body, cause = None, exc
    else:
        cause = None
    if not isinstance(body, dict):
        raise ProviderError(f"{vendor} answered with something that is not a JSON object (HTTP "
                            f"{response.status_code}); try again later.",
                            f"{vendor} 返回的内容不是 JSON 对象（HTTP {response.status_code}），请稍后再试。",
                            retryable=True, vendor_code="bad_json",
                            http_status=response.status_code) from cause
    return body


def error_body(response: httpx.Response) -> dict:
    """The JSON object of an error answer, or {} when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# --- images -------------------------------------------------------------------------
def check_image_size(image: ImageInput, *, vendor: str, max_bytes: int) -> None:
    """For a file image: it exists and is at most ``max_bytes`` (a URL is the vendor's business)."""
    if image.url:
        return
    size = image.path.stat().st_size if image.path and image.path.exists() else 0
    if size == 0:
        raise ValidationError(f"{image.role}: the image file is missing.", f"{image.role}：图片文件不存在。")
    if size > max_bytes:
        mb, lim = size / 2**20, max_bytes / 2**20
        raise ValidationError(f"{image.role}: the image is {mb:.1f} MB; {vendor} accepts at most {lim:.0f} MB "
                              "when uploaded. Use a smaller image or a public URL.",
                              f"{image.role}：图片 {mb:.1f} MB，{vendor} 上传上限 {lim:.0f} MB。"
                              "请缩小图片或使用公开 URL。")


def image_payload(image: ImageInput, *, vendor: str, max_bytes: int, raw_base64: bool = False) -> str:
    if image.url:
        return image.url
    check_image_size(image, vendor=vendor, max_bytes=max_bytes)
    return image.as_base64() if raw_base64 else image.as_data_uri()


# --- downloads ----------------------------------------------------------------------
def _expired(status: int) -> ProviderError:
    return ProviderError(
        f"The result link has expired or was refused by the storage (HTTP {status}); the video can no "
        "longer be downloaded. Run the job again to generate a new one.",
        f"结果链接已过期或被存储拒绝（HTTP {status}），视频已无法下载。请重新运行任务生成新视频。",
        retryable=False, vendor_code="url_expired", http_status=status)


def _not_mp4(head: bytes) -> str:
    if not is_mp4(head):
        raise ProviderError("The downloaded file is not an MP4 video.", "下载的文件不是 MP4 视频。",
                            retryable=True, vendor_code="not_mp4")
    return "mp4"


def _interrupted(exc: httpx.HTTPError) -> ProviderError:
    return ProviderError(f"The download was interrupted ({type(exc).__name__}).",
                         f"下载中断（{type(exc).__name__}）。", retryable=True, vendor_code="download")


def _opened(response: httpx.Response) -> str | None:
    """The storage's answer is worth reading: its Content-Length (or None); else the error."""
    if response.status_code in EXPIRED_STATUS:
        raise _expired(response.status_code)
    if response.status_code >= 400:
        raise http_error("The result storage", response.status_code)
    return response.headers.get("content-length")


def _received(expected: str | None, got: int, head: bytes, check: Callable[[bytes], str]) -> str:
    """All of it arrived and it is what it says: the file's extension (``check(head)``), else the error."""
    if expected is not None and expected.isdigit() and got != int(expected):
        raise ProviderError(f"The download was truncated ({got} of {expected} bytes).",
                            f"下载不完整（{got}/{expected} 字节）。", retryable=True, vendor_code="truncated")
    return check(head)


def _download_timeout() -> httpx.Timeout:
    return timeouts(_env_float("XIANYING_DOWNLOAD_TIMEOUT", 120.0))


def _fetch(url: str, tmp: Path, check: Callable[[bytes], str]) -> str:
    """One streamed download to ``tmp`` (blocking), checked; -> the extension."""
    tmp.unlink(missing_ok=True)
    head = b""
    try:
        with get_client().stream("GET", url, timeout=_download_timeout()) as response:
            expected = _opened(response)
            with open(tmp, "wb") as fh:
                for chunk in response.iter_bytes(1 << 16):
                    head = head if len(head) >= 12 else head + chunk[:12]
                    fh.write(chunk)
            got = response.num_bytes_downloaded
    except httpx.HTTPError as exc:
        raise _interrupted(exc) from exc
    return _received(expected, got, head, check)


IN_MEMORY_BYTES = 256 << 10  # on the loop, a download up to this size is held in memory and written off it


async def _afetch(url: str, tmp: Path, check: Callable[[bytes], str], vendor: str) -> tuple[str, bytes | None]:
    """``_fetch`` on the cloud loop: the bytes are awaited there -> ``(extension, body)``. A body of at
    most ``IN_MEMORY_BYTES`` comes back whole and the download steps write it, fsync and rename it in one
    trip off the loop: creating a file waits on the disk, and on the loop that wait held every request
    (a tenth of the loop's time with 500 small downloads landing at once). A larger body goes to
    ``tmp`` as it arrives (``body`` is then ``None``), so memory stays bounded by the in-flight
    downloads' first ``IN_MEMORY_BYTES``."""
    from engines.cloud import aio

    head, parts, size, fh = b"", [], 0, None
    try:
        async with aio.slot(vendor):
            async with aio.stream(url, timeout=_download_timeout()) as response:
                expected = _opened(response)
                try:
                    async for chunk in response.aiter_bytes(1 << 16):
                        head = head if len(head) >= 12 else head + chunk[:12]
                        if fh is not None:
                            fh.write(chunk)
                            continue
                        parts.append(chunk)
                        size += len(chunk)
                        if size > IN_MEMORY_BYTES:  # opened here: waiting for a file thread busy with
                            fh = open(tmp, "wb")  # thumbnails held every download's buffers (+300 MB for 500)
                            fh.write(b"".join(parts))
                            parts = []
                finally:
                    if fh is not None:
                        fh.close()
                got = response.num_bytes_downloaded
    except httpx.HTTPError as exc:
        raise _interrupted(exc) from exc
    return _received(expected, got, head, check), (None if fh is not None else b"".join(parts))


def _fsync_path(path: Path) -> None:
    """The file's data on disk before it is renamed into place (an fsync through a new descriptor, opened
    for writing: Windows' ``_commit`` refuses a read-only one)."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, body: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())


def _download_steps(url: str, dest_dir: Path, prefix: str, index: int, *, part: str,
                    check: Callable[[bytes], str], attempts: int | None, vendor: str):
    """Download to a temp file beside the result, retried (truncation, interruptions), then renamed to
    ``output_name(prefix, index, ext)``: as steps (``engines.cloud.steps``), for both paths."""
    from engines.cloud import aio
    from engines.cloud.steps import Io

    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".{prefix}-{index}{part}"
    what = f"download from {urlsplit(url).netloc}"
    attempts = attempts or _env_int("XIANYING_DOWNLOAD_ATTEMPTS", 3)
    try:
        ext, body = yield Io(lambda: (with_retries(lambda: _fetch(url, tmp, check), what=what, attempts=attempts),
                                      None),
                             lambda: aio.with_retries(lambda: _afetch(url, tmp, check, vendor), what=what,
                                                      attempts=attempts))
        if body is None:
            _fsync_path(tmp)
        else:
            _write_synced(tmp, body)
        final = dest_dir / output_name(prefix, index, ext)
        replace_with_retry(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def result_steps(url: str, dest_dir: Path, prefix: str, index: int, *, kind: str = "video",
                 attempts: int | None = None, vendor: str = "storage"):
    """A result's download as steps (see the module's doc): a video (an MP4) or, with ``kind="image"``, a
    picture (Seedance's last frame). The caller may do more in the same trips (``KeyedCloudEngine``'s
    collect probes the file in the trip that renamed it)."""
    if kind == "video":
        return _download_steps(url, dest_dir, prefix, index, part=".part", check=_not_mp4, attempts=attempts,
                               vendor=vendor)
    return _download_steps(url, dest_dir, prefix, index, part=".img.part", check=_image_kind, attempts=attempts,
                           vendor=vendor)


IMAGE_SIGNATURES = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpg", b"RIFF": "webp"}


def _image_ext(head: bytes) -> str | None:
    return next((ext for sig, ext in IMAGE_SIGNATURES.items() if head.startswith(sig)), None)


def _image_kind(head: bytes) -> str:
    ext = _image_ext(head)
    if ext is None:
        raise ProviderError("The downloaded file is not a PNG, JPEG or WebP image.", "下载的文件不是图片。",
                            retryable=True, vendor_code="not_image")
    return ext
