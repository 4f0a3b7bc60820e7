"""The process Lambda started, before any user code is imported: it forks the worker processes and keeps them serving.

With several slots (Lambda Managed Instances), the invokes run in forked
workers, never in this process. That is what makes a crash cost only the
invokes of the process it hit: when a worker dies (a handler's ``os._exit()``,
the OOM killer's SIGKILL, a segfault in a C extension), the supervisor at once
fails each invoke the worker had not answered, with ``Runtime.ExitError`` as
Lambda reports a runtime that exits, and starts another worker in its place.
The other workers serve on untouched.

It knows what a worker had in flight from a table in memory shared with the
workers: each slot writes the request id it takes and clears it once the
answer is posted, a few bytes written with no system call on the invoke's
path. The supervisor reads a worker's rows only after it is dead, so there is
no race to guard.

Only three things end the runtime: a worker that loses the Runtime API (it
marks its exit as the runtime's own in the table first), SIGTERM (passed on to
every worker, which runs the user's shutdown hooks there) and the
supervisor's own death (each worker watches a pipe only the supervisor holds
open).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from . import logs
from .runtime_api import RuntimeAPIError, RuntimeAPIRefused, open_socket

if TYPE_CHECKING:
    import mmap
    import socket

    from .errors import ErrorDocument
    from .runtime_api import RuntimeAPIClient

EXIT_ERROR = "Runtime.ExitError"

# A worker that dies sooner than this after it started is replaced only after
# a pause that doubles with each such death in a row (1 s, 2 s, 4 s... up to
# MAX_RESPAWN_PAUSE): a worker that cannot live must not make the supervisor
# spin, while one that dies now and then is replaced at once.
QUICK_DEATH = 1.0
RESPAWN_PAUSE = 1.0
MAX_RESPAWN_PAUSE = 30.0

# Each slot has a row: its state, whether its worker dropped the supervisor's
# connection for one of its own, the request id's length, then the id
# (Lambda's are 36 ASCII characters; a longer one is not tracked, and its
# invoke waits for its timeout if its worker dies).
_ROW = 128
_STATE, _DETACHED, _LENGTH, _ID = 0, 1, 2, 3
FRESH = 0  # nothing is asked on its connection: a replacement starts with `next`
WAITING = 1  # `next` was sent and is not answered yet: a replacement reads that answer
SERVING = 2  # an invoke was taken: if the worker dies, the supervisor fails it


class SlotTable:
    """Each slot's connection to the Runtime API and what it is doing, shared by the supervisor and every worker.

    The supervisor opens every slot's connection before it forks, and keeps
    them open: a worker that dies closes nothing, so the `next` requests its
    idle slots had sent stay open, and the worker that replaces it receives
    their invokes. (Were they closed, Lambda would still hand an invoke to
    each, and fail it.)
    """

    def __init__(self, address: str, slot_count: int, worker_count: int) -> None:
        import mmap  # here: one invoke at a time never needs it

        # Anonymous and shared: forked workers write into the same pages the supervisor reads.
        self._memory = mmap.mmap(-1, worker_count + slot_count * _ROW)
        self._slots_at = worker_count
        self._address = address
        self._sockets = [open_socket(address) for _ in range(slot_count)]

    def slot(self, index: int) -> Slot:
        return Slot(self._memory, self._slots_at + index * _ROW, self._sockets[index])

    def mark_runtime_exit(self, worker: int) -> None:
        """This worker ends because the runtime must (the Runtime API lost), not because a handler killed it."""
        self._memory[worker] = 1

    def is_runtime_exit(self, worker: int) -> bool:
        return self._memory[worker] == 1

    def release(self, worker: int, first_slot: int, count: int) -> list[str]:
        """Ready a dead worker's slots for its replacement; return the request ids it had not answered."""
        self._memory[worker] = 0
        request_ids = []
        for index in range(first_slot, first_slot + count):
            row = self._slots_at + index * _ROW
            state, detached = self._memory[row + _STATE], self._memory[row + _DETACHED]
            length = self._memory[row + _LENGTH]
            if state == SERVING and length:  # (0: an id too long to track)
                request_ids.append(self._memory[row + _ID : row + _ID + length].decode("utf-8", "replace"))
            if state == SERVING or detached:  # what is on this connection now is unknown: a new one
                self._sockets[index].close()
                self._sockets[index] = open_socket(self._address)
                self._memory[row + _STATE] = FRESH
                self._memory[row + _DETACHED] = 0
        return request_ids


class Slot:
    """One slot as its worker sees it: the supervisor's connection, and the row it keeps up to date."""

    __slots__ = ("_memory", "_row", "socket")

    def __init__(self, memory: mmap.mmap, row: int, connection: socket.socket) -> None:
        self._memory = memory
        self._row = row
        self.socket: socket.socket | None = connection

    def resumes_next(self) -> bool:
        """Whether a dead worker sent this slot's `next`, and its answer is still to be read."""
        return self.socket is not None and self._memory[self._row + _STATE] == WAITING

    def waiting(self) -> None:
        self._memory[self._row + _STATE] = WAITING

    def taken(self, request_id: str) -> None:
        encoded = request_id.encode()
        if len(encoded) <= _ROW - _ID:
            self._memory[self._row + _ID : self._row + _ID + len(encoded)] = encoded
            self._memory[self._row + _LENGTH] = len(encoded)
            self._memory[self._row + _STATE] = SERVING
        else:  # cannot be failed by the supervisor; the connection is to be renewed all the same
            self._memory[self._row + _STATE] = SERVING
            self._memory[self._row + _LENGTH] = 0
            self.detached()

    def detached(self) -> None:
        """The worker has dropped the supervisor's connection (after a failure) for one of its own."""
        self.socket = None
        self._memory[self._row + _DETACHED] = 1


class Supervisor:
    """Forks one worker per share of the slots, replaces those that die, and stops them all on SIGTERM."""

    def __init__(self, api: RuntimeAPIClient, worker_shares: list[int], table: SlotTable) -> None:
        self.api = api  # only to fail the invokes of a worker that died
        self.shares = worker_shares
        self.first_slots = [sum(worker_shares[:index]) for index in range(len(worker_shares))]
        self.table = table
        self.workers: dict[int, tuple[int, float]] = {}  # pid -> (worker index, when it started)
        self.quick_deaths = [0] * len(worker_shares)  # per worker index, deaths in a row soon after starting
        self.stopping = False
        self.status = 0  # the runtime's exit status
        self.on_sigterm = signal.getsignal(signal.SIGTERM)  # the runtime's, or the user's: the workers keep it
        self.lifeline = -1

    def fork_and_supervise(self) -> tuple[int, int, int]:
        """In a worker: return (its index, its first slot, its slot count). In the supervisor: never return."""
        global _lifeline
        _lifeline, self.lifeline = os.pipe()
        for index in range(len(self.shares)):
            if self.fork(index) == 0:
                return index, self.first_slots[index], self.shares[index]
        signal.signal(signal.SIGTERM, self.stop)
        try:
            while self.workers:
                replace = self.reap()
                if replace is not None and not self.stopping and self.fork(replace, self.pause(replace)) == 0:
                    return replace, self.first_slots[replace], self.shares[replace]
        except KeyboardInterrupt:  # Ctrl-C in a local run: the workers got it too
            self.stopping, self.status = True, 130
            while self.workers:
                self.reap()
        self.exit()

    def exit(self) -> NoReturn:
        # The user's shutdown hooks have run in the workers, which served the
        # invokes; the supervisor served none, so it leaves without running them again.
        logs.flush()
        os._exit(self.status)

    def fork(self, index: int, pause: float = 0.0) -> int:
        """Start worker ``index``, which first waits ``pause`` seconds; 0 in the new worker."""
        logs.flush()  # nothing buffered may be written twice
        pid = os.fork()
        if pid == 0:
            os.close(self.lifeline)
            if self.on_sigterm is not None:
                signal.signal(signal.SIGTERM, self.on_sigterm)
            if pause:  # (SIGTERM meanwhile ends this worker as it would a serving one)
                time.sleep(pause)
            return 0
        self.workers[pid] = (index, time.monotonic() + pause)
        return pid

    def reap(self) -> int | None:
        """Wait for a worker to end and answer for it; the index of one to replace, if it should be."""
        pid, status = os.wait()
        if pid not in self.workers:  # a process user code started at import, before the fork
            return None
        index, started = self.workers.pop(pid)
        if self.stopping:
            return None
        if self.table.is_runtime_exit(index):  # it lost the Runtime API: the runtime is over
            self.status = os.waitstatus_to_exitcode(status)
            self.stop()
            return None
        how = _how_it_ended(status)
        sys.stderr.write(f"pylambda: worker {pid} ended ({how}); starting another\n")
        self.fail_unanswered(index, f"Runtime exited with error: {how}")
        lived = time.monotonic() - started
        self.quick_deaths[index] = self.quick_deaths[index] + 1 if lived < QUICK_DEATH else 0
        return index

    def pause(self, index: int) -> float:
        """How long the replacement of worker ``index`` waits before it serves: 0, unless it keeps dying."""
        deaths = self.quick_deaths[index]
        return 0.0 if deaths == 0 else min(RESPAWN_PAUSE * 2 ** (deaths - 1), MAX_RESPAWN_PAUSE)

    def fail_unanswered(self, index: int, message: str) -> None:
        """Answer each invoke the dead worker had taken, so no caller waits for its timeout; ready its slots."""
        for request_id in self.table.release(index, self.first_slots[index], self.shares[index]):
            error: ErrorDocument = {
                "errorMessage": message,
                "errorType": EXIT_ERROR,
                "requestId": request_id,
                "stackTrace": [],
            }
            logs.report_error(error)
            try:
                self.api.post_error(request_id, error)
            except RuntimeAPIRefused:  # it had answered after all, just before it died
                pass
            except RuntimeAPIError as exc:  # the workers find out for themselves, and end the runtime
                sys.stderr.write(f"pylambda: could not fail invoke {request_id}: {exc}\n")

    def stop(self, *signal_args: object) -> None:
        """SIGTERM (or the runtime's end): pass it on to every worker, then wait for them to finish."""
        self.stopping = True
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):  # already gone, and about to be reaped
                os.kill(pid, signal.SIGTERM)


def _how_it_ended(status: int) -> str:
    """In the emulator's words for a runtime that exits: ``exit status 3``, ``signal: killed``."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.strsignal(number) or f"signal {number}"
        return f"signal: {name.lower()}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


_lifeline = -1  # a worker's read end of a pipe only the supervisor writes to


def watch_supervisor(then: Callable[[], None]) -> None:
    """In a worker, call ``then`` from a thread of its own once the supervisor is gone (end of file on the lifeline)."""

    def watch() -> None:
        while os.read(_lifeline, 1):
            pass
        then()

    import threading

    threading.Thread(target=watch, name="pylambda-watch", daemon=True).start()
