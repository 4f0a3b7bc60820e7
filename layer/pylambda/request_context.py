"""Which invoke the code running now belongs to: request id, tenant id, X-Ray trace id.

With one invoke at a time (the usual Lambda), these are process-wide: every
thread's log records belong to the invoke in progress, and the trace id sits
in ``_X_AMZN_TRACE_ID`` where the AWS SDKs and X-Ray read it. With several at
once (Lambda Managed Instances, ``AWS_LAMBDA_MAX_CONCURRENCY``), each runtime
thread, and each asyncio task it starts, carries its own, in a ContextVar; and
``os.environ["_X_AMZN_TRACE_ID"]`` answers with the trace id of the invoke
that asks, so concurrent invokes never see each other's.
"""

from __future__ import annotations

import contextvars
import os

TRACE_ID_VARIABLE = "_X_AMZN_TRACE_ID"

_ids: contextvars.ContextVar[tuple[str, str | None, str | None]] = contextvars.ContextVar("pylambda_invocation")
_process_wide: tuple[str, str | None, str | None] = ("", None, None)
_concurrent = False


def enter(request_id: str, tenant_id: str | None, trace_id: str | None) -> None:
    """Make this invoke the current one for the calling thread (and, with one invoke at a time, the process)."""
    global _process_wide
    ids = (request_id, tenant_id, trace_id)
    _ids.set(ids)
    if _concurrent:
        return
    _process_wide = ids
    if trace_id:
        os.environ[TRACE_ID_VARIABLE] = trace_id
    elif TRACE_ID_VARIABLE in os.environ:
        del os.environ[TRACE_ID_VARIABLE]


def current() -> tuple[str, str | None, str | None]:
    """The calling code's ids, to hand to code that runs elsewhere on its behalf (an asyncio task)."""
    return _ids.get(_process_wide)


def adopt(ids: tuple[str, str | None, str | None]) -> None:
    """Take on ids captured with ``current()``."""
    _ids.set(ids)


def request_id() -> str:
    return _ids.get(_process_wide)[0]


def tenant_id() -> str | None:
    return _ids.get(_process_wide)[1]


def serve_concurrently() -> None:
    """Switch to per-thread ids, before the runtime starts its concurrent loops."""
    global _concurrent
    _concurrent = True
    os.environ.pop(TRACE_ID_VARIABLE, None)
    # os.environ is one mapping for the whole process; giving it a subclass
    # that answers this one key from the caller's context keeps SDKs that read
    # os.environ["_X_AMZN_TRACE_ID"] per request correct without cross-talk.
    # (C code calling getenv() directly still sees the process environment.)
    os.environ.__class__ = _PerInvokeTraceEnviron


class _PerInvokeTraceEnviron(os._Environ):  # type: ignore[type-arg]
    def __getitem__(self, key: str) -> str:
        if key == TRACE_ID_VARIABLE:
            trace_id = _ids.get(_process_wide)[2]
            if trace_id is None:
                raise KeyError(key)
            return trace_id
        return super().__getitem__(key)  # type: ignore[no-any-return]
