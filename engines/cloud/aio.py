"""Cloud HTTP on one event loop: a vendor slow to answer holds a coroutine, not a thread.

One loop runs in a daemon thread (``cloud-aio``), started on first use and stopped with the studio
(``shutdown``). Requests go through ``httpx.AsyncClient`` pools (``client``: 64, a task keeps its
own) and, per vendor, a semaphore that
bounds how many *requests* are in flight at once (``XIANYING_CLOUD_CONCURRENCY``, default 64 per
vendor; a job waiting between polls holds none). What a finished request leads to (database
updates, journal files) runs on a small pool of completion threads (``after`` / ``blocking``,
``XIANYING_CLOUD_COMPLETION_THREADS``, default 4), never on the loop.

``submit(coro, vendor=None) -> concurrent.futures.Future``   run ``coro`` on the loop
``after(fn, *args)``                                    run ``fn(*args)`` on a completion thread
``await blocking(fn, *args)``  (async)  the same, awaited from the loop: its result or its error
``slot(vendor)``  (async context manager)  one of the vendor's request slots
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
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from engines.cloud import http

log = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_clients: list[httpx.AsyncClient] = []
_sems: dict[str, asyncio.Semaphore] = {}
_done: concurrent.futures.ThreadPoolExecutor | None = None
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


def shards() -> int:
    return http._env_int("XIANYING_CLOUD_CLIENTS", 64)


def client() -> httpx.AsyncClient:
    """The loop's client for the running task (call on the loop). There are ``XIANYING_CLOUD_CLIENTS``
    (64) clients, each with its own connection pool, and a task always gets the same one, so a
    chain keeps its connections. One pool with hundreds of connections costs time proportional to
    connections x waiting requests on every request (httpcore assigns connections by scanning them
    all, with a system call for each idle one): 64 pools of a few connections cost a small part of
    that. With 16, that scan was still a third of the loop's CPU for 500 jobs in flight."""
    task = asyncio.current_task()
    index = hash(task) % len(_clients) if task is not None and _clients else 0
    if not _clients or _clients[index].is_closed:
        tls = httpx.create_ssl_context(trust_env=True)  # one for all: each costs ~25 ms of CPU to build
        _clients[:] = [httpx.AsyncClient(timeout=http.timeouts(), headers={"User-Agent": http.USER_AGENT},
                                         verify=tls,
                                         limits=httpx.Limits(max_connections=512, max_keepalive_connections=32),
                                         follow_redirects=True, trust_env=True) for _ in range(shards())]
        index = hash(task) % len(_clients) if task is not None else 0
    return _clients[index]


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


def after(fn: Callable[..., Any], *args: Any) -> None:
    def run() -> None:
        try:
            fn(*args)
        except Exception:  # a completion must never die silently
            log.exception("cloud completion %s failed", getattr(fn, "__name__", fn))

    try:
        _completions().submit(run)
    except RuntimeError:  # shutting down: reconcile re-sends the step at the next start
        log.info("cloud completion dropped at shutdown")


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
    global _loop, _thread, _done
    with _lock:
        lp, th, done = _loop, _thread, _done
        _loop = _thread = _done = None
    if lp is not None and not lp.is_closed():
        async def close() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for each in _clients:
                await each.aclose()
            _clients.clear()
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
    if done is not None:
        done.shutdown(wait=True, cancel_futures=False)


# --- requests ------------------------------------------------------------------------
async def send_json(method: str, url: str, *, vendor: str, headers: dict | None = None, json: Any = None,
                    params: dict | None = None, content: bytes | None = None,
                    error_of: Callable[[httpx.Response], Exception] | None = None, idempotent: bool = True,
                    timeout: httpx.Timeout | None = None) -> dict:
    parts = urlsplit(url)
    try:
        async with slot(vendor):
            response = await client().request(method, url, headers=headers, json=json, params=params,
                                              content=content, timeout=timeout or http.timeouts())
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
