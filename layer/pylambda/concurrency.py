"""Serving several invokes at once, for Lambda Managed Instances (``AWS_LAMBDA_MAX_CONCURRENCY``).

The managed Python runtime promises each concurrent request a process of its
own, with its own memory and its own initialisation, serving one request at a
time: module globals, caches, connections opened at import and singletons are
never shared between concurrent requests. That is the default here too
(``AWS_LAMBDA_CONCURRENCY_MODE=process``): one worker process per slot, each
importing the handler itself after the fork.

Functions written to be thread-safe can trade that isolation for memory, with
the values and the arithmetic of AWS's own Python images:

- ``hybrid``: as many worker processes as the function has vCPUs, each
  importing the handler once and serving max(1, floor(N / vCPUs)) slots as
  threads (a remainder of slots goes unused). CPU-bound handlers still use
  every core.
- ``thread``: one worker process, importing the handler once, serving every
  slot as a thread (a thread costs tens of kilobytes where a process costs
  megabytes; Python releases the GIL while a handler waits on I/O).

``PYLAMBDA_CONCURRENCY_MODE``, the name this setting had before AWS named it,
is read as an alias when ``AWS_LAMBDA_CONCURRENCY_MODE`` is not set.

In every mode the process Lambda started never serves an invoke itself: it
supervises the workers (see supervisor), so a handler that kills its process
costs only that process's invokes, answered at once, and the worker that
replaces it runs the initialisation again. Workers are forked before the
handler is imported (the runtime itself is loaded once, shared copy-on-write).
asyncio handlers run on one shared loop per process (see event_loop).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn, TypeVar

from . import event_loop, logs, request_context, shutdown
from .errors import RuntimeFault
from .runtime_api import RuntimeAPIRefused

if TYPE_CHECKING:
    import queue

    from . import supervisor
    from .runtime_api import RuntimeAPIClient

_Handler = TypeVar("_Handler")

MODE_VARIABLE = "AWS_LAMBDA_CONCURRENCY_MODE"
ALIAS_VARIABLE = "PYLAMBDA_CONCURRENCY_MODE"  # pylambda's name for it before AWS gave it one
MODES = ("process", "thread", "hybrid")
INVALID_CONCURRENCY_MODE = "Runtime.InvalidConcurrencyMode"
# Where Lambda Managed Instances take each worker's output: a Unix socket to connect stdout and stderr to.
LOG_SOCKET_VARIABLE = "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"

# A slot thread back from its handler takes the GIL again at each system call
# on its way back to `next` (send the result, read the answer, send `next`),
# each time behind its process's other threads: with CPU-bound handlers,
# Python's default of 5 ms between GIL hand-overs makes slots come back late,
# and Lambda turns away invokes meanwhile. Hand-overs every 0.5 ms bring them
# back sooner; measured in benchmarks/concurrency.py, see
# docs/streaming-async-managed-instances.md.
SWITCH_INTERVAL = 0.0005


def slots(environ: Mapping[str, str]) -> int:
    """How many invokes Lambda may send at once: 1 unless AWS_LAMBDA_MAX_CONCURRENCY says more."""
    try:
        return max(1, int(environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "1")))
    except ValueError:
        return 1


def mode(environ: Mapping[str, str]) -> str:
    """The concurrency model asked for: AWS_LAMBDA_CONCURRENCY_MODE (or its alias), ``process`` when neither is set."""
    variable = MODE_VARIABLE if environ.get(MODE_VARIABLE, "").strip() else ALIAS_VARIABLE
    chosen = environ.get(variable, "").strip().lower() or "process"
    if chosen not in MODES:
        raise RuntimeFault(
            INVALID_CONCURRENCY_MODE,
            f"{variable}={environ[variable]!r} is not one of {', '.join(MODES)} ({MODE_VARIABLE}, or its alias"
            f" {ALIAS_VARIABLE}): process (the default) gives each concurrent invoke a process of its own, as the"
            " managed Python runtime does",
        )
    return chosen


def worker_count(slot_count: int, chosen: str) -> int:
    """How many processes share the slots in mode ``chosen``: in ``hybrid``, one per vCPU (AWS's arithmetic)."""
    if chosen == "process":
        return slot_count
    if chosen == "thread":
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def shares(slot_count: int, workers: int) -> list[int]:
    """The slots each worker serves: max(1, floor(N / workers)) each, as AWS's hybrid mode divides them (9 over 2:
    4 and 4; 2 over 4: 1 each)."""
    return [max(1, slot_count // workers)] * workers


def run_workers(
    count: int,
    chosen: str,
    address: str,
    api: RuntimeAPIClient,
    *,
    initialise: Callable[[], _Handler],
    loop: Callable[[_Handler, supervisor.Slot], NoReturn],
) -> NoReturn:
    """Serve ``count`` slots in worker processes: each runs ``initialise``, then ``loop`` for each of its slots.

    This returns (raises) only in a worker, whose stack is the caller's: a
    worker ends the way the single-process runtime does. ``api`` is what the
    supervisor fails a dead worker's invokes through.
    """
    from . import supervisor  # here, not at the top: one invoke at a time never needs it

    log_socket = os.environ.pop(LOG_SOCKET_VARIABLE, None)  # the workers' own, not the user code's
    worker_shares = shares(count, worker_count(count, chosen))
    table = supervisor.SlotTable(address, sum(worker_shares), len(worker_shares))
    # Frozen before the fork: no collection in a worker walks the runtime's objects, so their pages stay shared.
    gc.freeze()
    worker, first, count = supervisor.Supervisor(api, worker_shares, table).fork_and_supervise()
    # In the worker from here on.
    if log_socket:
        logs.connect_output(log_socket)
    try:
        handler = initialise()
    except SystemExit:  # the init error went to Lambda, which ends the environment: the runtime ends too
        table.mark_runtime_exit(worker)
        raise
    except RuntimeAPIRefused:  # another worker reported it first, or Lambda's init was over: already logged
        raise SystemExit(1) from None
    try:
        if count == 1:  # a process of its own, serving as the single-invoke runtime does
            supervisor.watch_supervisor(shutdown.interrupt_main_thread)
            loop(handler, table.slot(first))
        _serve_as_threads(handler, {index: table.slot(index) for index in range(first, first + count)}, loop)
    except (shutdown.Shutdown, KeyboardInterrupt):  # SIGTERM and Ctrl-C end this worker only
        raise
    except BaseException:  # anything else (the Runtime API lost) ends the runtime, which the supervisor is told
        table.mark_runtime_exit(worker)
        raise


def _serve_as_threads(
    handler: _Handler, slots: dict[int, supervisor.Slot], loop: Callable[[_Handler, supervisor.Slot], NoReturn]
) -> NoReturn:
    """Run ``loop`` for each slot in a thread of its own until one fails; raise its failure."""
    import queue

    from . import supervisor

    request_context.serve_concurrently()
    event_loop.serve_concurrently()
    sys.setswitchinterval(SWITCH_INTERVAL)
    failures: queue.SimpleQueue[BaseException] = queue.SimpleQueue()
    # The supervisor's end of this pipe closes when it dies: then stop too.
    supervisor.watch_supervisor(lambda: failures.put(shutdown.Shutdown()))

    def guarded(slot: supervisor.Slot) -> None:
        try:
            loop(handler, slot)
        except BaseException as exc:  # handed to the main thread, which decides
            failures.put(exc)

    for index, slot in slots.items():
        threading.Thread(target=guarded, args=(slot,), name=f"pylambda-slot-{index}", daemon=True).start()
    # The main thread only waits, so that signals (SIGTERM) are handled where the runtime can act on them.
    raise failures.get()
