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

The process Lambda started stays as a supervisor: it replaces a worker that a
signal kills (the OOM killer, a crash in a C extension), passes SIGTERM on to
every worker, which runs the user's shutdown hooks there (where the invokes'
state is), and exits when they have. A worker that exits with a status of its
own (the Runtime API lost) ends the runtime with that status, as the
single-process runtime would.

With one usable core, or an interpreter whose GIL is off (free-threaded
CPython), one process of threads uses every core there is: no fork.
asyncio handlers run on one shared loop per process (see event_loop).
"""

from __future__ import annotations

import contextlib
import os
import signal  # already loaded: shutdown uses it
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NoReturn

from . import event_loop, logs, request_context, shutdown

if TYPE_CHECKING:
    import queue

# A slot thread back from its handler takes the GIL again at each system call
# on its way back to `next` (send the result, read the answer, send `next`),
# each time behind its process's other threads: with CPU-bound handlers,
# Python's default of 5 ms between GIL hand-overs makes slots come back late,
# and Lambda turns away invokes meanwhile. Fewer threads per process (two
# processes per core, not one) and hand-overs every 0.5 ms bring the
# emulator's "no free slot" answers to awslambdaric's (one process per slot);
# measured in benchmarks/concurrency.py, see the README.
WORKERS_PER_CORE = 2
SWITCH_INTERVAL = 0.0005

# A worker that dies sooner than this after its start is replaced only after
# this long: a worker that cannot live must not make the supervisor spin.
RESPAWN_PAUSE = 1.0


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
    if cores == 1:  # processes would add no CPU, only memory
        return 1
    return min(slot_count, WORKERS_PER_CORE * cores)


def shares(slot_count: int, workers: int) -> list[int]:
    """The slots each worker serves: as even as they divide (8 over 3 workers: 3, 3, 2)."""
    return [slot_count // workers + (index < slot_count % workers) for index in range(workers)]


def run_loops(count: int, loop: Callable[[], object]) -> NoReturn:
    """Serve ``count`` slots, each running ``loop``, until one fails; raise its failure here.

    With several workers this returns (raises) only in a worker, whose stack
    is the caller's: a worker ends the way the single-process runtime does.
    """
    import queue  # here, not at the top: one invoke at a time never needs it

    request_context.serve_concurrently()
    event_loop.serve_concurrently()
    workers = worker_count(count)
    failures: queue.SimpleQueue[BaseException] = queue.SimpleQueue()
    first = 0
    if workers > 1:
        first, count = _Supervisor(shares(count, workers)).fork_and_supervise()
        # The supervisor's end of this pipe closes when it dies: then stop too.
        threading.Thread(target=_watch_supervisor, args=(failures,), name="pylambda-watch", daemon=True).start()

    if count > 1:
        sys.setswitchinterval(SWITCH_INTERVAL)

    def guarded() -> None:
        try:
            loop()
        except BaseException as exc:  # handed to the main thread, which decides
            failures.put(exc)

    for index in range(first, first + count):
        threading.Thread(target=guarded, name=f"pylambda-slot-{index}", daemon=True).start()
    # The main thread only waits, so that signals (SIGTERM) are handled where
    # the runtime can act on them.
    raise failures.get()


_lifeline = -1  # a worker's read end of a pipe only the supervisor writes to


def _watch_supervisor(failures: queue.SimpleQueue[BaseException]) -> None:
    """Block until the supervisor is gone (end of file on the lifeline), then end this worker cleanly."""
    while os.read(_lifeline, 1):
        pass
    failures.put(shutdown.Shutdown())


class _Supervisor:
    """The process Lambda started, once the handler is loaded: forks the workers and keeps them running."""

    def __init__(self, worker_shares: list[int]) -> None:
        self.shares = worker_shares
        self.first_slots = [sum(worker_shares[:index]) for index in range(len(worker_shares))]
        self.workers: dict[int, tuple[int, float]] = {}  # pid -> (worker index, when it started)
        self.stopping = False
        self.status = 0  # the runtime's exit status
        self.on_sigterm = signal.getsignal(signal.SIGTERM)  # the runtime's, or the user's: the workers keep it

    def fork_and_supervise(self) -> tuple[int, int]:
        """In a worker: return its first slot's number and its slot count. In the supervisor: never return."""
        global _lifeline
        _lifeline, self.lifeline = os.pipe()
        for index in range(len(self.shares)):
            if self.fork(index) == 0:
                return self.first_slots[index], self.shares[index]
        signal.signal(signal.SIGTERM, self.stop)
        try:
            while self.workers:
                replace = self.reap()
                if replace is not None and not self.stopping and self.fork(replace) == 0:
                    return self.first_slots[replace], self.shares[replace]
        except KeyboardInterrupt:  # Ctrl-C in a local run: the workers got it too
            self.stopping, self.status = True, 130
            while self.workers:
                self.reap()
        # The user's shutdown hooks have run in the workers, which served the
        # invokes; the supervisor served none, so it leaves without running them again.
        logs.flush()
        os._exit(self.status)

    def fork(self, index: int) -> int:
        """Start worker ``index``; 0 in the new worker."""
        logs.flush()  # nothing buffered may be written twice
        pid = os.fork()
        if pid == 0:
            os.close(self.lifeline)
            if self.on_sigterm is not None:
                signal.signal(signal.SIGTERM, self.on_sigterm)
            return 0
        self.workers[pid] = (index, time.monotonic())
        return pid

    def reap(self) -> int | None:
        """Wait for a worker to end; the index of one to replace, if it should be."""
        pid, status = os.wait()
        if pid not in self.workers:  # a process user code started at import, before the fork
            return None
        index, started = self.workers.pop(pid)
        if self.stopping:
            return None
        if not os.WIFSIGNALED(status):  # it ended itself: the runtime is over
            self.status = os.waitstatus_to_exitcode(status)
            self.stop()
            return None
        sys.stderr.write(f"pylambda: worker {pid} was killed by signal {os.WTERMSIG(status)}; starting another\n")
        if time.monotonic() - started < RESPAWN_PAUSE:
            time.sleep(RESPAWN_PAUSE)  # (a SIGTERM meanwhile sets self.stopping: no replacement then)
        return index

    def stop(self, *signal_args: object) -> None:
        """SIGTERM (or the runtime's end): pass it on to every worker, then wait for them to finish."""
        self.stopping = True
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):  # already gone, and about to be reaped
                os.kill(pid, signal.SIGTERM)
