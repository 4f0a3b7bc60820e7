"""Ending the process well: SIGTERM runs the user's shutdown hooks, a crash leaves a trace.

Lambda sends SIGTERM before it stops an execution environment (and kills it
shortly after). Python's default is to die on the spot, skipping ``atexit``
hooks that flush metrics or close connections; here SIGTERM unwinds the loop
instead, so the interpreter exits normally and runs them. A handler that
user code registers for SIGTERM replaces this one, as it would anywhere.
"""

from __future__ import annotations

import faulthandler
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
else:
    # The C module behind `signal`, which would build its enums (Signals,
    # Handlers) on every cold start for the two calls made here. User code
    # that imports `signal` sees the same handlers.
    import _signal as signal


class Shutdown(BaseException):
    """Raised by SIGTERM; a BaseException so that no ``except Exception`` in user code swallows it."""


def install() -> None:
    """Route SIGTERM through ``Shutdown`` and dump Python's stack if the process crashes."""
    # A segfault in a C extension otherwise leaves only "signal: segmentation
    # fault" in the logs; faulthandler prints where Python was when it happened.
    faulthandler.enable()
    signal.signal(signal.SIGTERM, _on_sigterm)


def exiting() -> None:
    """The process ends by itself from here: a SIGTERM now has nothing to unwind.

    With several workers, the supervisor SIGTERMs the others when one ends
    the runtime; one that is already exiting (its interpreter waiting for its
    threads, or running ``atexit`` hooks) would otherwise get a ``Shutdown``
    that nothing catches, and a traceback in the logs instead of its own exit.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def interrupt_main_thread() -> None:
    """SIGTERM the main thread from another: a call it is blocked in returns, and it shuts down as for Lambda's."""
    import threading

    ident = threading.main_thread().ident
    if ident is not None:
        signal.pthread_kill(ident, signal.SIGTERM)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Once is enough: a second SIGTERM (with several worker processes, the one
    # passed on by the supervisor after the process group got its own) must
    # not interrupt the shutdown hooks the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Shutdown
