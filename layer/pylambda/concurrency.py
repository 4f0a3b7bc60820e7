"""Serving several invokes at once, for Lambda Managed Instances (``AWS_LAMBDA_MAX_CONCURRENCY``).

Each slot is a thread with its own Runtime API connection and its own
``next`` loop. A thread costs tens of kilobytes where a process costs
megabytes, and Lambda handlers mostly wait on I/O, during which Python
releases the GIL. But the threads of one process take turns on its GIL, so
CPU-bound handlers would get one core's worth of Python. So the slots are
spread over worker processes, two per usable core (see WORKERS_PER_CORE),
each serving its share as threads: CPU-bound handlers use every core, and memory grows with the cores,
not the slots. The workers are forked after init, so the imported handler and
whatever it built at import are shared copy-on-write, not imported again.

The process Lambda started never serves an invoke itself: it supervises the
workers (see supervisor), so that a handler that kills its process costs only
that process's invokes, answered at once. With one usable core, or an
interpreter whose GIL is off (free-threaded CPython), one worker of threads
uses every core there is, and it is still supervised: one more process costs
about 3 MB of memory (PSS, measured in benchmarks/concurrency.py) and buys
that isolation.
asyncio handlers run on one shared loop per process (see event_loop).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn

from . import event_loop, request_context, shutdown

if TYPE_CHECKING:
    import queue

    from . import supervisor
    from .runtime_api import RuntimeAPIClient

# A slot thread back from its handler takes the GIL again at each system call
# on its way back to `next` (send the result, read the answer, send `next`),
# each time behind its process's other threads: with CPU-bound handlers,
# Python's default of 5 ms between GIL hand-overs makes slots come back late,
# and Lambda turns away invokes meanwhile. Fewer threads per process (two
# processes per core, not one) and hand-overs every 0.5 ms bring the
# emulator's "no free slot" answers to awslambdaric's (one process per slot);
# measured in benchmarks/concurrency.py, see docs/streaming-async-managed-instances.md.
WORKERS_PER_CORE = 2
SWITCH_INTERVAL = 0.0005


def slots(environ: Mapping[str, str]) -> int:
    """How many invokes Lambda may send at once: 1 unless AWS_LAMBDA_MAX_CONCURRENCY says more."""
    try:
        return max(1, int(environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "1")))
    except ValueError:
        return 1


def worker_count(slot_count: int) -> int:
    """How many processes share the slots: two per usable core, unless threads alone already use every core."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)  # Python 3.13+
    if is_gil_enabled is not None and not is_gil_enabled():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores == 1:  # more processes would add no CPU, only memory
        return 1
    return min(slot_count, WORKERS_PER_CORE * cores)


def shares(slot_count: int, workers: int) -> list[int]:
    """The slots each worker serves: as even as they divide (8 over 3 workers: 3, 3, 2)."""
    return [slot_count // workers + (index < slot_count % workers) for index in range(workers)]


def run_loops(count: int, loop: Callable[[supervisor.Slot], object], address: str, api: RuntimeAPIClient) -> NoReturn:
    """Serve ``count`` slots in worker processes, each slot running ``loop``, until one fails; raise its failure.

    This returns (raises) only in a worker, whose stack is the caller's: a
    worker ends the way the single-process runtime does. ``api`` is what the
    supervisor fails a dead worker's invokes through.
    """
    import queue  # here, not at the top: one invoke at a time never needs them

    from . import supervisor

    request_context.serve_concurrently()
    event_loop.serve_concurrently()
    worker_shares = shares(count, worker_count(count))
    table = supervisor.SlotTable(address, count, len(worker_shares))
    worker, first, count = supervisor.Supervisor(api, worker_shares, table).fork_and_supervise()
    failures: queue.SimpleQueue[BaseException] = queue.SimpleQueue()
    # The supervisor's end of this pipe closes when it dies: then stop too.
    watch = threading.Thread(target=supervisor.watch_supervisor, args=(failures.put,), name="pylambda-watch")
    watch.daemon = True
    watch.start()

    if count > 1:
        sys.setswitchinterval(SWITCH_INTERVAL)

    def guarded(slot: supervisor.Slot) -> None:
        try:
            loop(slot)
        except BaseException as exc:  # handed to the main thread, which decides
            failures.put(exc)

    for index in range(first, first + count):
        slot = table.slot(index)
        threading.Thread(target=guarded, args=(slot,), name=f"pylambda-slot-{index}", daemon=True).start()
    # The main thread only waits, so that signals (SIGTERM) are handled where
    # the runtime can act on them.
    failure = failures.get()
    # SIGTERM and Ctrl-C end this worker only; anything else a slot raises
    # (the Runtime API lost) ends the runtime, which the supervisor is told.
    if not isinstance(failure, (shutdown.Shutdown, KeyboardInterrupt)):
        table.mark_runtime_exit(worker)
    raise failure
