"""One piece of logic, two ways to run its I/O: blocking (io workers) or on the cloud loop.

A decision that talks to a vendor (the create loop of ``safecreate``, an adapter's task lookup) is
written once, as a generator that *yields* what it needs done and receives the answer:

``Io(sync, async_)``   a request, as a blocking thunk and as a coroutine factory; the generator
                       gets the thunk's result (or its exception, raised at the ``yield``)
``Sleep(seconds)``     a pause (``time.sleep`` / ``asyncio.sleep``)

``run(gen)``           drives it on this thread: each ``Io`` is called, each ``Sleep`` slept
``await arun(gen, on=None)``  drives it from the cloud loop: each ``Io`` is awaited on the loop,
                       and the generator's own code (journal files, locks) is advanced off the loop
                       by ``on`` (``aio.blocking``, a completion thread, by default; ``aio.files``
                       for creates and downloads), never on the loop
``json_call(method, url, *, vendor, retries=False, what=..., **send_kwargs) -> Io``
                       ``http.send_json`` / ``aio.send_json`` as one ``Io`` (``retries``: True for
                       the default attempts, or a number), optionally followed by ``then(answer)``

So the sync and async paths share every rule; only the transport differs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

from engines.cloud import aio, http


@dataclass(frozen=True)
class Io:
    sync: Callable[[], Any]
    async_: Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Sleep:
    seconds: float


Steps = Generator["Io | Sleep", Any, Any]


def advance(gen: Steps, value: Any = None, error: BaseException | None = None) -> tuple[bool, Any]:
    """One step: ``(True, result)`` when the generator returned, else ``(False, next effect)``."""
    try:
        return False, (gen.throw(error) if error is not None else gen.send(value))
    except StopIteration as stop:
        return True, stop.value


def run(gen: Steps) -> Any:
    value: Any = None
    error: BaseException | None = None
    while True:
        done, effect = advance(gen, value, error)
        if done:
            return effect
        value = error = None
        try:
            if isinstance(effect, Sleep):
                time.sleep(effect.seconds)
            else:
                value = effect.sync()
        except Exception as exc:  # handed to the generator, which decides
            error = exc


async def arun(gen: Steps, on: Callable[..., Awaitable[Any]] | None = None) -> Any:
    value: Any = None
    error: BaseException | None = None
    off_loop = on or aio.blocking
    while True:
        done, effect = await off_loop(advance, gen, value, error)
        if done:
            return effect
        value = error = None
        try:
            if isinstance(effect, Sleep):
                await asyncio.sleep(effect.seconds)
            else:
                value = await effect.async_()
        except Exception as exc:  # (a CancelledError is not one: the studio is stopping)
            error = exc


def json_call(method: str, url: str, *, vendor: str, retries: bool | int = False, what: str = "request",
              then: Callable[[dict], Any] | None = None, **kwargs: Any) -> Io:
    attempts = None if retries is True else (int(retries) or None)

    def sync() -> Any:
        once = lambda: http.send_json(method, url, vendor=vendor, **kwargs)  # noqa: E731
        answer = http.with_retries(once, what=what, attempts=attempts) if retries else once()
        return then(answer) if then else answer

    async def async_() -> Any:
        once = lambda: aio.send_json(method, url, vendor=vendor, **kwargs)  # noqa: E731
        answer = await (aio.with_retries(once, what=what, attempts=attempts) if retries else once())
        return then(answer) if then else answer

    return Io(sync, async_)
