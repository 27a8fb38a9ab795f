"""Cloud HTTP on one event loop: a vendor slow to answer holds a coroutine, not a thread.

One loop runs in a daemon thread (``cloud-aio``), started on first use and stopped with the studio
(``shutdown``). Requests go through one ``aiohttp`` session (its connection pool is a dict by
host, so hundreds of jobs in flight cost no scan per request) and, per vendor, a semaphore that
bounds how many *requests* are in flight at once (``XIANYING_CLOUD_CONCURRENCY``, default 64 per
vendor; a job waiting between polls holds none). What a finished request leads to (database
updates) runs on a small pool of completion threads (``blocking``, ``XIANYING_CLOUD_COMPLETION_THREADS``,
default 4), and the work on files (a create's journal note, a result's file, its fsync, probe and
thumbnail) on file threads (``files``, ``XIANYING_CLOUD_FILE_THREADS``, default the cores up to 4):
never on the loop, where a file's creation or an fsync would hold every request, and not queued
behind the database work. Each job's steps still run one after another; only different jobs' files
are written (and their fsyncs grouped by the file system) at once.

Why aiohttp here and httpx on the blocking path: for 500 jobs polling a slow vendor, httpx's async
client (httpcore's pool, anyio, h11) was a third of the cloud process's CPU; the same requests
through aiohttp cost about a third as much (``bench/cloud.py``). The rest of the code still sees
httpx: ``request`` returns an ``httpx.Response`` (read whole) and raises httpx's errors, mapped so
that "never sent" (``ConnectError``, ``ConnectTimeout``) and "maybe sent" (anything later) mean what
they mean on the blocking path: ``http.transport_error`` decides from them whether a create may
have reached the vendor.

``submit(coro, vendor=None) -> concurrent.futures.Future``   run ``coro`` on the loop
``await blocking(fn, *args)``  (async)  ``fn(*args)`` on a completion thread, awaited from the loop
``await files(fn, *args)``     (async)  the same on a file thread (journal notes, results, probes)
``slot(vendor)``  (async context manager)  one of the vendor's request slots
``await request(method, url, *, headers, json, params, content, timeout) -> httpx.Response``
``stream(url, *, timeout)``  (async context manager)  a download: ``status_code``, ``headers``,
                              ``aiter_bytes(n)``, ``num_bytes_downloaded``; httpx's errors
``send_json(...)``  (async)   ``http.send_json`` on the loop: same errors, same answer checks
``with_retries(afn, what, attempts)``  (async)  ``http.with_retries`` for coroutines: same policy
``enabled(settings) -> bool``  the ``queue.async_cloud`` setting (default on)
``retain()`` / ``release()``  a studio starts / stops using the loop; the last release shuts it down
``shutdown(timeout)``         cancel what is in flight (a chain cut this way is resumed by the
                              runner's reconcile at the next start) and stop the loop
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json as jsonlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from engines.cloud import http

if TYPE_CHECKING:
    import aiohttp
    import yarl

log = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_session: aiohttp.ClientSession | None = None
_session_loop: asyncio.AbstractEventLoop | None = None
_timeouts: dict[tuple, aiohttp.ClientTimeout] = {}
_proxies: dict[tuple, dict] = {}  # (scheme, host) -> the proxy arguments of its requests
_sems: dict[str, asyncio.Semaphore] = {}
_done: concurrent.futures.ThreadPoolExecutor | None = None
_files: concurrent.futures.ThreadPoolExecutor | None = None
_users = 0  # studios in this process that use the loop (retain/release)


def enabled(settings) -> bool:
    queue = getattr(settings, "queue", None)
    return bool(getattr(queue, "async_cloud", True))


def concurrency() -> int:
    return http._env_int("XIANYING_CLOUD_CONCURRENCY", 64)


def loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            ready = threading.Event()
            new = asyncio.new_event_loop()

            def run() -> None:
                asyncio.set_event_loop(new)
                new.call_soon(ready.set)
                new.run_forever()

            _thread = threading.Thread(target=run, name="cloud-aio", daemon=True)
            _thread.start()
            ready.wait(10)
            _loop = new
        return _loop


def _completions() -> concurrent.futures.ThreadPoolExecutor:
    global _done
    with _lock:
        if _done is None:
            workers = http._env_int("XIANYING_CLOUD_COMPLETION_THREADS", 4)
            _done = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                          thread_name_prefix="cloud-done")
        return _done


def _file_threads() -> concurrent.futures.ThreadPoolExecutor:
    global _files
    with _lock:
        if _files is None:
            workers = http._env_int("XIANYING_CLOUD_FILE_THREADS", min(4, os.cpu_count() or 1))
            _files = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers),
                                                           thread_name_prefix="cloud-files")
        return _files


def slot(vendor: str) -> asyncio.Semaphore:
    """The vendor's request slots (on the loop): ``async with aio.slot(vendor): <one request>``."""
    sem = _sems.get(vendor)
    if sem is None:
        sem = _sems[vendor] = asyncio.Semaphore(concurrency())
    return sem


def submit(coro: Awaitable[T], vendor: str | None = None) -> concurrent.futures.Future:
    """Run ``coro`` on the loop. Its requests take the vendor's slots one at a time (``send_json``),
    so a long chain (create, polls, downloads) never holds a slot while it waits."""
    return asyncio.run_coroutine_threadsafe(coro, loop())


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a completion thread, awaited from the loop (files, database, CPU work)."""
    return await asyncio.wrap_future(_completions().submit(fn, *args))


async def files(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a file thread, awaited from the loop: a create's journal note, a result's file, its
    fsync, probe and thumbnail, beside (not queued behind) the completion threads' database work. The
    fsyncs of several jobs wait together, and FFmpeg lets go of the GIL while it decodes, so several
    file threads thumbnail on several cores."""
    return await asyncio.wrap_future(_file_threads().submit(fn, *args))


def retain() -> None:
    """A studio starts using the loop (it starts lazily on the first request)."""
    global _users
    with _lock:
        _users += 1


def release(timeout: float = 5.0) -> None:
    """A studio stops: the last one out shuts the loop down."""
    global _users
    with _lock:
        _users = max(0, _users - 1)
        last = _users == 0
    if last:
        shutdown(timeout)


def shutdown(timeout: float = 5.0) -> None:
    global _loop, _thread, _done, _files
    with _lock:
        lp, th, done, fls = _loop, _thread, _done, _files
        _loop = _thread = _done = _files = None
    if lp is not None and not lp.is_closed():
        async def close() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            global _session
            if _session is not None:
                await _session.close()
            _session = None
            _sems.clear()

        try:
            asyncio.run_coroutine_threadsafe(close(), lp).result(timeout)
        except Exception:
            log.warning("cloud loop did not close cleanly")
        lp.call_soon_threadsafe(lp.stop)
        if th is not None:
            th.join(timeout)
        if not lp.is_running():
            lp.close()
    for pool in (done, fls):
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)


# --- requests ------------------------------------------------------------------------
def session() -> aiohttp.ClientSession:
    """The loop's HTTP session (call on the loop). Answers are not decompressed here: ``request`` hands
    the raw body to ``httpx.Response``, which decodes it from its Content-Encoding."""
    import aiohttp  # here, not at import: the studio's server imports this module and never sends from it

    global _session, _session_loop
    running = asyncio.get_running_loop()
    if _session is None or _session.closed or _session_loop is not running:  # (a loop started again: a new one)
        tls = httpx.create_ssl_context(trust_env=True)  # certifi's roots, SSL_CERT_FILE: as the blocking client
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=tls),
            headers={"User-Agent": http.USER_AGENT, "Accept-Encoding": "gzip, deflate"},
            skip_auto_headers=("Content-Type",),  # a body's type is the caller's to say, as with httpx
            # trust_env=True would look up ~/.netrc and the proxy variables in a thread for every request
            # (two trips off the loop each): the proxies are read once here instead (``_proxy``), and
            # vendors' answers set no cookie worth keeping
            trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False, max_line_size=16384, max_field_size=16384)
        _session_loop = running
        _proxies.clear()
    return _session


def _proxy(url: yarl.URL) -> dict:
    """The proxy for ``url`` from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY, as the blocking
    client honours them (read once per session and host): ``{"proxy": ..., "proxy_auth": ...}`` or {}."""
    key = (url.scheme, url.host)
    found = _proxies.get(key)
    if found is None:
        import urllib.request

        import aiohttp
        import yarl

        found = {}
        env = urllib.request.getproxies_environment()
        chosen = env.get(url.scheme) or env.get("all")
        if chosen and not urllib.request.proxy_bypass_environment(url.host or "", env):
            proxy = yarl.URL(chosen if "://" in chosen else f"http://{chosen}")
            found = {"proxy": proxy.with_user(None)}
            if proxy.user:
                found["proxy_auth"] = aiohttp.BasicAuth(proxy.user, proxy.password or "")
        _proxies[key] = found
    return found


def _client_timeout(timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
    """httpx's four timeouts as aiohttp's: connecting (a free connection included), then each read.
    aiohttp has no write timeout; a body that cannot be sent stalls until the read timeout."""
    key = (timeout.connect, timeout.read, timeout.pool)
    found = _timeouts.get(key)
    if found is None:
        import aiohttp

        connect = None if timeout.connect is None else timeout.connect + (timeout.pool or 0.0)
        found = _timeouts[key] = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=timeout.connect,
                                                       sock_read=timeout.read)
    return found


def _url(url: str, params: dict | None = None) -> yarl.URL:
    """The URL as httpx would put it on the wire (its quoting, ``params`` appended), untouched after that."""
    import yarl

    parsed = httpx.URL(url, params=params) if params else httpx.URL(url)  # (params=None would drop the query)
    return yarl.URL(str(parsed), encoded=True)


def _as_httpx(exc: BaseException) -> httpx.HTTPError:
    """aiohttp's error as the httpx error that means the same for a create: ``ConnectError`` and
    ``ConnectTimeout`` only when nothing was sent, anything after that as sent. The message is the
    error's kind (and the system's reason): never a URL, whose query may be a signature."""
    import aiohttp

    reason = getattr(exc, "strerror", None)
    what = type(exc).__name__ + (f": {reason}" if reason else "")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(what)
    if isinstance(exc, (aiohttp.ServerTimeoutError, TimeoutError)):
        return httpx.ReadTimeout(what)
    if isinstance(exc, aiohttp.RedirectClientError):  # the vendor answered, with a redirect we cannot follow
        return httpx.RemoteProtocolError(what)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError, aiohttp.InvalidUrlClientError)):
        return httpx.ConnectError(what)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return httpx.TooManyRedirects(what)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        return httpx.RemoteProtocolError(what)
    return httpx.ReadError(what)  # reset, closed mid-way: the request may have reached the vendor


async def request(method: str, url: str, *, headers: dict | None = None, json: Any = None,
                  params: dict | None = None, content: bytes | None = None,
                  timeout: httpx.Timeout | None = None) -> httpx.Response:
    """One request on the loop, its answer read whole: what ``httpx.AsyncClient.request`` would return
    (a JSON body serialised as httpx does it) or raise."""
    import aiohttp

    if json is not None:
        content = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        if not any(k.lower() == "content-type" for k in headers or ()):
            headers = {**(headers or {}), "Content-Type": "application/json"}
    target = _url(url, params)
    try:
        async with session().request(method, target, headers=headers, data=content, **_proxy(target),
                                     timeout=_client_timeout(timeout or http.timeouts())) as answer:
            body = await answer.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _as_httpx(exc) from None
    return httpx.Response(answer.status, headers=answer.raw_headers, content=body)


class Download:
    """A streamed answer, as much of ``httpx.Response`` as a download reads."""

    def __init__(self, answer: aiohttp.ClientResponse):
        self._answer = answer
        self.status_code = answer.status
        self.headers = answer.headers
        self.num_bytes_downloaded = 0

    async def aiter_bytes(self, size: int = 1 << 16) -> AsyncIterator[bytes]:
        async for chunk in self._answer.content.iter_chunked(size):
            self.num_bytes_downloaded += len(chunk)
            yield chunk


@contextlib.asynccontextmanager
async def stream(url: str, *, timeout: httpx.Timeout | None = None) -> AsyncIterator[Download]:
    """GET ``url`` as a stream (asking for the bytes as stored: ``Accept-Encoding: identity``, so the
    length checked is the file's); aiohttp's errors, on the way or while reading, as httpx's."""
    import aiohttp

    target = _url(url)
    try:
        async with session().get(target, headers={"Accept-Encoding": "identity"}, **_proxy(target),
                                 timeout=_client_timeout(timeout or http.timeouts())) as answer:
            yield Download(answer)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _as_httpx(exc) from None


async def send_json(method: str, url: str, *, vendor: str, headers: dict | None = None, json: Any = None,
                    params: dict | None = None, content: bytes | None = None,
                    error_of: Callable[[httpx.Response], Exception] | None = None, idempotent: bool = True,
                    timeout: httpx.Timeout | None = None) -> dict:
    parts = urlsplit(url)
    try:
        async with slot(vendor):
            response = await request(method, url, headers=headers, json=json, params=params, content=content,
                                     timeout=timeout or http.timeouts())
    except httpx.HTTPError as exc:
        log.info("%s %s%s: %s", method, parts.netloc, parts.path, type(exc).__name__)
        raise http.transport_error(vendor, exc, idempotent=idempotent) from exc
    return http.decode_json(response, vendor=vendor, error_of=error_of)


async def with_retries(afn: Callable[[], Awaitable[T]], *, what: str = "request", attempts: int | None = None,
                       max_wait: float | None = None) -> T:
    attempts = attempts or http._env_int("XIANYING_RETRY_ATTEMPTS", 3)
    max_wait = max_wait if max_wait is not None else http._env_float("XIANYING_RETRY_MAX_WAIT", 8.0)
    initial = min(http._env_float("XIANYING_RETRY_INITIAL", 0.5), max_wait)
    backoff = wait_exponential_jitter(initial=initial, max=max_wait, jitter=initial)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "fields", {}).get("retry_after") if exc is not None else None
        return min(float(hinted), max_wait) if hinted is not None else backoff(state)

    async for attempt in AsyncRetrying(stop=stop_after_attempt(attempts), wait=wait, reraise=True,
                                       retry=retry_if_exception(http.is_retryable)):
        with attempt:
            return await afn()
    raise AssertionError("unreachable")  # pragma: no cover
