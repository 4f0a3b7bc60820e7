"""Web applications named by ``_HANDLER``: an ASGI or WSGI app is served as it is, without an adapter.

``_HANDLER=main.app`` (or ``main:app``, as uvicorn and gunicorn write it) may
name a FastAPI, Starlette, Flask or Django application instead of a function.
What the object is decides how it is called, once, at init:

- an ordinary handler, ``handler(event, context)``, runs exactly as before;
- an ASGI 3 application, ``async (scope, receive, send)``, is served by asgi;
- a WSGI application, ``(environ, start_response)``, is served by wsgi.

The test reads the callable's code object (argument count, names, whether it
is a coroutine): no ``inspect`` import, which would cost every cold start
several milliseconds. Where it cannot tell (a C callable, ``*args``),
the object is taken as an ordinary handler, and ``PYLAMBDA_HANDLER_KIND``
(``asgi``, ``wsgi`` or ``handler``) says what it is instead.

``PYLAMBDA_INVOKE_MODE=RESPONSE_STREAM`` (SAM's name for a function URL that
streams) makes an app's answers stream; the default, ``BUFFERED``, answers
with one response document.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

from .errors import RuntimeFault

KIND_VARIABLE = "PYLAMBDA_HANDLER_KIND"
KINDS = ("handler", "asgi", "wsgi")
INVOKE_MODE_VARIABLE = "PYLAMBDA_INVOKE_MODE"
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
INVALID_HANDLER_KIND = "Runtime.InvalidHandlerKind"
INVALID_INVOKE_MODE = "Runtime.InvalidInvokeMode"

WSGI_PARAMETERS = ("environ", "start_response")  # PEP 3333's names, which WSGI apps keep
_CO_VARARGS = 0x04
_CO_COROUTINE = 0x80


def serve(handler: Any, name: str, environ: Mapping[str, str]) -> Callable[[Any, Any], Any]:
    """The callable the runtime calls with (event, context) for the object ``_HANDLER`` named."""
    kind = chosen_kind(handler, name, environ)
    if kind == "handler":
        return handler  # type: ignore[no-any-return]
    streaming = invoke_mode(environ) == "RESPONSE_STREAM"
    if kind == "asgi":
        from .asgi import AsgiHandler

        return AsgiHandler(handler, streaming)
    from . import concurrency
    from .wsgi import WsgiHandler

    # Threads share the app only in the opt-in concurrency models; by default each process serves one request.
    multithread = concurrency.slots(environ) > 1 and concurrency.mode(environ) != "process"
    return WsgiHandler(handler, streaming, multithread)


def chosen_kind(handler: Any, name: str, environ: Mapping[str, str]) -> str:
    """What ``handler`` is: detected, or as PYLAMBDA_HANDLER_KIND says when that is set and fits."""
    detected = detect(handler)
    asked = environ.get(KIND_VARIABLE, "").strip().lower()
    if not asked or asked == "auto":
        return detected
    if asked not in KINDS:
        message = f"{KIND_VARIABLE}={environ[KIND_VARIABLE]!r} is not one of auto, {', '.join(KINDS)}"
        raise RuntimeFault(INVALID_HANDLER_KIND, message)
    shape = _parameters(handler)
    if asked != "handler" and shape is not None:  # what the object's code says it takes contradicts the setting
        names, coroutine = shape
        wanted = 3 if asked == "asgi" else 2
        if len(names) != wanted or coroutine != (asked == "asgi"):
            takes = f"{'an async ' if coroutine else 'a '}callable of {len(names)} positional arguments"
            expected = "async (scope, receive, send)" if asked == "asgi" else "(environ, start_response)"
            message = f"{KIND_VARIABLE}={asked} but '{name}' is {takes}, not an {asked.upper()} app {expected}"
            raise RuntimeFault(INVALID_HANDLER_KIND, message)
    return asked


def invoke_mode(environ: Mapping[str, str]) -> str:
    """BUFFERED unless PYLAMBDA_INVOKE_MODE asks for RESPONSE_STREAM."""
    mode = environ.get(INVOKE_MODE_VARIABLE, "").strip().upper() or "BUFFERED"
    if mode not in INVOKE_MODES:
        message = f"{INVOKE_MODE_VARIABLE}={environ[INVOKE_MODE_VARIABLE]!r} is not one of {', '.join(INVOKE_MODES)}"
        raise RuntimeFault(INVALID_INVOKE_MODE, message)
    return mode


def detect(handler: Any) -> str:
    """``asgi``, ``wsgi`` or ``handler``, from the parameters of the function that a call runs."""
    shape = _parameters(handler)
    if shape is None:
        return "handler"
    names, coroutine = shape
    if coroutine and len(names) == 3:
        return "asgi"
    if not coroutine and names == WSGI_PARAMETERS:
        return "wsgi"
    return "handler"


def _parameters(handler: Any) -> tuple[tuple[str, ...], bool] | None:
    """(the positional parameters a call fills, whether it is ``async def``), or None when the code does not say."""
    code = _code(handler)
    if code is None or code.co_flags & _CO_VARARGS:
        return None
    bound = 0 if isinstance(handler, types.FunctionType) else 1  # a method's self, or an instance's __call__'s
    return code.co_varnames[bound : code.co_argcount], bool(code.co_flags & _CO_COROUTINE)


def _code(handler: Any) -> types.CodeType | None:
    """The code object a call to ``handler`` runs, through functools.wraps decorators; None for classes and C."""
    if isinstance(handler, type):
        return None
    function: Any = handler
    if isinstance(function, types.MethodType):
        function = function.__func__
    elif not isinstance(function, types.FunctionType):
        function = type(function).__dict__.get("__call__") or getattr(type(function), "__call__", None)  # noqa: B004
    for _ in range(100):  # decorators that keep the wrapped function (functools.wraps) hide its parameters
        wrapped = getattr(function, "__wrapped__", None)
        if wrapped is None:
            break
        function = wrapped
    code = getattr(function, "__code__", None)
    return code if isinstance(code, types.CodeType) else None
