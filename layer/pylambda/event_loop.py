"""Running ``async def`` handlers: one event loop for the life of the process.

Clients a coroutine handler keeps between invokes (an aiohttp session, an
httpx.AsyncClient, an asyncio.Lock) belong to the loop they first ran on; a
fresh loop per invoke, as ``asyncio.run`` would make, breaks them on the
second invoke. So the runtime runs every coroutine on one loop: the one user
code set up at import if it did, or one of its own. asyncio is imported only
when a handler first returns something awaitable, so sync handlers never pay
for it.

With several invokes at once, the loop runs in a thread of its own and every
runtime thread hands it its coroutine: concurrent invokes share the loop (and
the clients on it) and interleave at each ``await``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

from . import request_context

_T = TypeVar("_T")
_loop: asyncio.AbstractEventLoop | None = None
_concurrent = False
_creating = threading.Lock()


def serve_concurrently() -> None:
    """From now on, run coroutines on a loop in its own thread, for callers on several threads."""
    global _concurrent
    _concurrent = True
    # A loop made before (a web app's lifespan startup, at init) goes on in the loop's thread.
    if _loop is not None and not _loop.is_closed() and not _loop.is_running():
        threading.Thread(target=_loop.run_forever, name="pylambda-event-loop", daemon=True).start()


def is_awaitable(value: object) -> bool:
    """Whether a handler's result is a coroutine (or another awaitable) to run, not a value to send."""
    return hasattr(type(value), "__await__")


def run(awaitable: Awaitable[_T]) -> _T:
    """Run ``awaitable`` to completion on the runtime's loop."""
    if not _concurrent:
        return _the_loop().run_until_complete(awaitable)
    import asyncio

    task = _as_invoke(request_context.current(), awaitable)
    returned, outcome = asyncio.run_coroutine_threadsafe(task, _the_loop()).result()
    if not returned:
        raise outcome
    return outcome  # type: ignore[no-any-return]


async def _as_invoke(ids: tuple[str, str | None, str | None], awaitable: Awaitable[_T]) -> tuple[bool, Any]:
    """Await on the loop's thread with the ids of the invoke that asked (a task's context is its own).

    A handler's sys.exit() (or Ctrl-C) raised in a task propagates out of the
    loop and would stop it for every invoke that shares it: it is handed back
    to the invoke's own thread instead, which reports it as that invoke's error.
    """
    request_context.adopt(ids)
    try:
        return True, await awaitable
    except (SystemExit, KeyboardInterrupt) as exc:
        return False, exc


def iterate(generator: AsyncIterator[_T]) -> Iterator[_T]:
    """Drive an async generator from synchronous code, one item at a time, on the runtime's loop."""
    while True:
        done, item = run(_next(generator))
        if done:
            return
        yield item


async def _next(generator: AsyncIterator[_T]) -> tuple[bool, Any]:
    try:
        return False, await generator.__anext__()
    except StopAsyncIteration:
        return True, None


def _the_loop() -> asyncio.AbstractEventLoop:
    if _loop is not None and not _loop.is_closed():
        return _loop
    # Slot threads may ask for the first time at once: exactly one loop (and loop thread) per process.
    with _creating:
        return _loop if _loop is not None and not _loop.is_closed() else _new_loop()


def _new_loop() -> asyncio.AbstractEventLoop:
    global _loop
    import asyncio

    # The loop user code made current at import, if any: its clients are bound to it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            _loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:  # none set (Python 3.14 no longer makes one here)
            _loop = None
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    if _concurrent:
        threading.Thread(target=_loop.run_forever, name="pylambda-event-loop", daemon=True).start()
    return _loop
