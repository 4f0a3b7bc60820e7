"""Serving several invokes at once, for Lambda Managed Instances (``AWS_LAMBDA_MAX_CONCURRENCY``).

One thread per slot, each with its own Runtime API connection and its own
``next`` loop; all share the handler, its module state and the event loop.
Threads, not processes: a thread costs tens of kilobytes where a forked
worker costs megabytes, and Lambda handlers mostly wait on I/O, during which
Python releases the GIL. The price is CPU-bound handlers: they take turns on
the GIL, so N slots give one core's worth of Python (a free-threaded build
would lift that). asyncio handlers run on one shared loop (see event_loop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import NoReturn

from . import event_loop, request_context


def slots(environ: Mapping[str, str]) -> int:
    """How many invokes Lambda may send at once: 1 unless AWS_LAMBDA_MAX_CONCURRENCY says more."""
    try:
        return max(1, int(environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "1")))
    except ValueError:
        return 1


def run_loops(count: int, loop: Callable[[], object]) -> NoReturn:
    """Run ``loop`` on ``count`` threads until one fails, then raise its failure here.

    The main thread only waits, so that signals (SIGTERM) are handled where
    the runtime can act on them.
    """
    import queue  # here, not at the top: one invoke at a time never needs it

    request_context.serve_concurrently()
    event_loop.serve_concurrently()
    failures: queue.SimpleQueue[BaseException] = queue.SimpleQueue()

    def guarded() -> None:
        try:
            loop()
        except BaseException as exc:  # handed to the main thread, which decides
            failures.put(exc)

    for index in range(count):
        threading.Thread(target=guarded, name=f"pylambda-slot-{index}", daemon=True).start()
    raise failures.get()
