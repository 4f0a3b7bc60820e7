"""Serving an ASGI application (FastAPI, Starlette, Django's ASGI handler, Quart...) as the handler.

Each HTTP event becomes one ASGI ``http`` connection on the runtime's event
loop (see event_loop): the app reads the request from ``receive`` and answers
through ``send``. The lifespan protocol runs once per process: startup during
the init (its failure fails the init), shutdown when the process ends.

Buffered, the answer goes back as the response document the caller expects
(http_events). Streamed (``PYLAMBDA_INVOKE_MODE=RESPONSE_STREAM``), the
handler hands the runtime an async generator: the status and headers as the
HTTP prelude, then each body chunk as the app sends it (see streaming).
"""

from __future__ import annotations

import asyncio
import atexit
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from . import event_loop, logs
from .errors import USER_CODE_FAILURES, RuntimeFault, error_document
from .http_events import INTERNAL_ERROR, Request, answer, prelude, streamed_internal_error

LIFESPAN_STARTUP_FAILED = "Runtime.LifespanStartupFailed"
# The spec version says what the app may expect of us: 2.4 lets it stream
# without watching for a disconnect beside each response.
ASGI = {"version": "3.0", "spec_version": "2.4"}
SHUTDOWN_SECONDS = 2.0  # Lambda gives a process about this long once it is told to stop

App = Callable[[dict[str, Any], Callable[[], Any], Callable[[dict[str, Any]], Any]], Any]


class AsgiHandler:
    """The handler Lambda calls, in front of an ASGI application."""

    def __init__(self, app: App, streaming: bool) -> None:
        self.app = app
        self.streaming = streaming
        self.lifespan = Lifespan(app)
        event_loop.run(self.lifespan.startup())
        atexit.register(self.lifespan.stop)

    def __call__(self, event: Any, context: Any) -> Any:
        """A coroutine of the response document, or an async generator of the streamed answer."""
        request = Request(event)
        scope = {
            "type": "http",
            "asgi": ASGI,
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.scheme,
            "path": request.path,
            "raw_path": request.raw_path,
            "query_string": request.query,
            "root_path": "",
            "headers": [(name.encode(), value.encode()) for name, value in request.headers],
            "client": (request.client, 0) if request.client else None,
            "server": request.server,
            "state": dict(self.lifespan.state),
            "aws.event": event,
            "aws.context": context,
        }
        exchange = Exchange(self.app, scope, request.body, context.aws_request_id)
        return exchange.stream() if self.streaming else exchange.buffered(request)


class Exchange:
    """One request and its answer: what ``receive`` gives the app, what its ``send`` calls say."""

    def __init__(self, app: App, scope: dict[str, Any], body: bytes, request_id: str) -> None:
        self.app, self.scope, self.body, self.request_id = app, scope, body, request_id
        self.request_read = False
        self.answered = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        """The whole body at once; then, once the answer is complete, the client's going."""
        if not self.request_read:
            self.request_read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.answered.wait()
        return {"type": "http.disconnect"}

    async def buffered(self, request: Request) -> dict[str, Any]:
        status, headers, chunks = 0, [], []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], _text_headers(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    self.answered.set()

        try:
            await self.app(self.scope, self.receive, send)
            if not self.answered.is_set():
                raise RuntimeFault("Runtime.IncompleteResponse", "the application returned without a whole answer")
        except USER_CODE_FAILURES as exc:
            self.report(exc)
            if not self.answered.is_set():
                status, headers, body = INTERNAL_ERROR
                return answer(request, status, headers, body)
        return answer(request, status, headers, b"".join(chunks))

    async def stream(self) -> AsyncIterator[Any]:
        """The prelude, then each chunk as the app sends it; the app waits while a chunk goes out."""
        outbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

        async def run() -> None:
            try:
                await self.app(self.scope, self.receive, outbox.put)
                await outbox.put(None)
            except USER_CODE_FAILURES as exc:
                await outbox.put(exc)

        task = asyncio.ensure_future(run())
        started = False
        try:
            while (message := await outbox.get()) is not None:
                if isinstance(message, BaseException):
                    if started:  # bytes are out: the stream ends with the error in its trailers
                        raise message
                    self.report(message)
                    for item in streamed_internal_error():
                        yield item
                    return
                if message["type"] == "http.response.start" and not started:
                    started = True
                    yield {"statusCode": message["status"], **prelude(_text_headers(message.get("headers", ())))}
                elif message["type"] == "http.response.body" and started:
                    if message.get("body"):
                        yield bytes(message["body"])
                    if not message.get("more_body", False):
                        self.answered.set()
            if not started:
                self.report(RuntimeFault("Runtime.IncompleteResponse", "the application returned without an answer"))
                for item in streamed_internal_error():
                    yield item
        finally:
            if not task.done():
                task.cancel()

    def report(self, exc: BaseException) -> None:
        """Log the app's failure as a failed invoke is logged; the client gets a 500."""
        logs.report_error(error_document(exc, self.request_id))


class Lifespan:
    """The app's startup and shutdown, run once per process, and the state its startup fills."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.task: asyncio.Future[None] | None = None
        self.failure: str | None = None
        self.read_startup = False

    async def startup(self) -> None:
        """Run the app's startup; raise its failure. An app without lifespan support starts as it is."""
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.started = asyncio.get_running_loop().create_future()
        self.stopped = asyncio.get_running_loop().create_future()
        self.inbox.put_nowait({"type": "lifespan.startup"})
        self.task = asyncio.ensure_future(self.run())
        outcome = await self.started
        if isinstance(outcome, BaseException):
            raise outcome
        if self.failure is not None:
            raise RuntimeFault(LIFESPAN_STARTUP_FAILED, f"The application's lifespan startup failed: {self.failure}")

    async def run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except USER_CODE_FAILURES as exc:
            # Raised before it read the startup message: the app does not speak lifespan, which the spec
            # allows. Raised after: its startup failed.
            outcome: object = exc if self.failure is not None or self.read_startup else None
        else:
            outcome = None
        for future in (self.started, self.stopped):
            if not future.done():
                future.set_result(outcome)

    async def receive(self) -> dict[str, Any]:
        message = await self.inbox.get()
        self.read_startup = True
        return message

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            self.failure = message.get("message", "") or "(no message)"
        if kind.startswith("lifespan.startup.") and not self.started.done():
            if kind == "lifespan.startup.complete":
                self.started.set_result(None)
            # a failed startup is settled when the app returns or raises, so its exception is the one reported
        elif kind.startswith("lifespan.shutdown.") and not self.stopped.done():
            self.stopped.set_result(None)

    def stop(self) -> None:
        """At exit: the app's shutdown, given a moment; a hang or failure is logged, not waited on."""
        if self.task is None or self.task.done():
            return
        try:
            event_loop.run(self.shutdown())
        except Exception as exc:
            sys.stderr.write(f"pylambda: the application's lifespan shutdown failed: {exc!r}\n")

    async def shutdown(self) -> None:
        self.failure = None
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        await asyncio.wait_for(asyncio.shield(self.stopped), SHUTDOWN_SECONDS)
        if self.failure is not None:
            raise RuntimeError(self.failure)


def _text_headers(headers: Any) -> list[tuple[str, str]]:
    return [(bytes(name).decode("latin-1"), bytes(value).decode("utf-8", "replace")) for name, value in headers]
