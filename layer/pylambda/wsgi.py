"""Serving a WSGI application (Flask, Django, Bottle, Falcon...) as the handler.

Each HTTP event becomes one WSGI call (PEP 3333): the request as ``environ``,
the answer through ``start_response`` and the body the app returns. Buffered,
the answer goes back as the response document the caller expects
(http_events); streamed (``PYLAMBDA_INVOKE_MODE=RESPONSE_STREAM``), the
handler is a generator: the status and headers as the HTTP prelude, then
each chunk as the app's body iterator produces it (see streaming).
"""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from . import logs
from .errors import USER_CODE_FAILURES, error_document
from .http_events import INTERNAL_ERROR, Request, answer, prelude, streamed_internal_error

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WsgiHandler:
    """The handler Lambda calls, in front of a WSGI application."""

    def __init__(self, app: App, streaming: bool, multithread: bool) -> None:
        self.app = app
        self.streaming = streaming
        self.multithread = multithread

    def __call__(self, event: Any, context: Any) -> Any:
        """The response document, or a generator of the streamed answer."""
        request = Request(event)
        environ = self.environ(request, event, context)
        if self.streaming:
            return self.stream(environ, context.aws_request_id)
        try:
            status, headers, chunks = self.start(environ)
            body = b"".join(chunks)
        except USER_CODE_FAILURES as exc:
            logs.report_error(error_document(exc, context.aws_request_id))
            status, headers, body = INTERNAL_ERROR
        return answer(request, status, headers, body)

    def stream(self, environ: dict[str, Any], request_id: str) -> Iterator[Any]:
        try:
            status, headers, chunks = self.start(environ)
        except USER_CODE_FAILURES as exc:
            logs.report_error(error_document(exc, request_id))
            yield from streamed_internal_error()
            return
        yield {"statusCode": status, **prelude(headers)}
        yield from chunks  # a failure from here on ends the stream with its error in the trailers (see streaming)

    def start(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], Iterator[bytes]]:
        """Call the app: its status, its headers, and its body's chunks (closed once read, as PEP 3333 asks).

        Buffered, the whole body is read here. Streamed, only its first chunk:
        an app may call start_response only once its body begins.
        """
        answered: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            answered[:] = [int(status.split(None, 1)[0]), list(headers)]
            return written.append

        chunks = _chunks(self.app(environ, start_response), written)
        if self.streaming:
            first = next(chunks, b"")
            read: Iterator[bytes] = itertools.chain([first], chunks)
        else:
            read = iter(list(chunks))
        if not answered:
            raise RuntimeError("the WSGI application returned without calling start_response")
        return answered[0], answered[1], read

    def environ(self, request: Request, event: Any, context: Any) -> dict[str, Any]:
        """The request as PEP 3333 describes it: text as Latin-1 code points of the bytes on the wire."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(request.raw_path).decode("latin-1"),
            "QUERY_STRING": request.query.decode("latin-1"),
            "SERVER_NAME": request.server[0],
            "SERVER_PORT": str(request.server[1]),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": request.client or "127.0.0.1",
            "CONTENT_LENGTH": str(len(request.body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(request.body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": self.multithread,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "aws.event": event,
            "aws.context": context,
        }
        for name, text in request.headers:
            if name == "content-length":
                continue
            key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
            value = text.encode().decode("latin-1")
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                environ[key] = value
        return environ


def _chunks(result: Iterable[bytes], written: list[bytes]) -> Iterator[bytes]:
    """The body: what the app wrote through ``write``, then what it returned; closed at the end."""
    try:
        for chunk in result:
            if written:
                yield b"".join(written)
                written.clear()
            if chunk:
                yield bytes(chunk)
        if written:
            yield b"".join(written)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
