"""The HTTP client for the Lambda Runtime API (``$AWS_LAMBDA_RUNTIME_API``).

Four calls make the whole protocol: fetch the next event, post its result,
post its error, or post an init error. The API is a local HTTP/1.1 server that
only this process talks to, so the client holds a single urllib3
``HTTPConnection`` rather than a pool, and reads each answer as the plain
``http11`` response that the vendored urllib3 is built on: no pool queue,
retry, timeout, header dict or decoding response wrapper on the path every
invoke takes twice, and none of the modules behind them on every cold start.
The connection is kept open while the server allows it (the emulator does,
for HTTP/1.1 clients that do not ask it to close); after an answer with
``Connection: close`` it reopens on the next call.
"""

from __future__ import annotations

import binascii
import json
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from . import http11
from ._vendor.urllib3.connection import HTTPConnection
from ._vendor.urllib3.exceptions import HTTPError

if TYPE_CHECKING:
    from typing import Protocol

    from .context import Headers
    from .errors import ErrorDocument

    class Slot(Protocol):
        """What a client serving one slot of a worker process tells it (``supervisor.Slot``)."""

        socket: socket.socket | None

        def resumes_next(self) -> bool: ...
        def waiting(self) -> None: ...
        def taken(self, request_id: str) -> None: ...
        def detached(self) -> None: ...


_BASE = "/2018-06-01/runtime"
_NEXT = f"{_BASE}/invocation/next"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_HEADER = "Lambda-Runtime-Function-Error-Body"
XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
INVOCATION_ID_HEADER = "Lambda-Runtime-Invocation-Id"
# The managed runtime leaves the X-Ray cause out at this size: no header of a megabyte.
MAX_XRAY_CAUSE = 1024 * 1024


# `next` is the one call that is safe to repeat: once the API has answered at
# least once, a short, bounded series of tries rides out a hiccup (a dropped
# connection, a 500) without ever spinning hot. An API that never answered is
# not retried: the runtime is misconfigured, and one line says so at once.
NEXT_RETRY_DELAYS = (0.1, 0.3, 1.0)


class RuntimeAPIError(Exception):
    """The Runtime API could not be reached, or failed."""


class RuntimeAPIRefused(RuntimeAPIError):
    """The Runtime API answered a call with a client error (4xx), such as 413 for a result too large."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Invocation:
    """One event to handle: its request id, raw body and the ``next`` answer's headers."""

    __slots__ = ("body", "headers", "request_id")

    def __init__(self, request_id: str, body: bytes, headers: Headers) -> None:
        self.request_id = request_id
        self.body = body
        self.headers = headers


class RuntimeAPIClient:
    """Speaks the Runtime API over one reusable connection.

    A slot of a worker process (Lambda Managed Instances) starts on the
    connection its supervisor opened, and tells its slot what it does: see
    ``supervisor``.
    """

    def __init__(self, address: str, slot: Slot | None = None) -> None:
        # No timeout: `next` blocks for as long as there is no event, and
        # Lambda freezes the process meanwhile.
        self._connection = HTTPConnection(*parse_address(address), timeout=None)
        self._answered = False
        self._slot = slot
        # Lambda Managed Instances name each invoke with an invocation id too; the answer carries it back.
        self._echo: dict[str, str] = {}
        if slot is not None:
            self._connection.sock = slot.socket

    def next_invocation(self) -> Invocation:
        """Block until Lambda has an event for this runtime; retry a failing API a few times, then give up."""
        slot = self._slot
        for delay in (*NEXT_RETRY_DELAYS, None):
            try:
                if slot is None:
                    response = self._call("GET", _NEXT)
                elif slot.resumes_next():  # sent by a worker that died before the answer came
                    response = self._receive("GET", _NEXT)
                else:
                    response = self._call("GET", _NEXT, sent=slot.waiting)
                break
            except RuntimeAPIError as exc:
                if delay is None or not self._answered:
                    raise
                sys.stderr.write(f"pylambda: {exc}; trying again in {delay:g} s\n")
                time.sleep(delay)
        headers, body = response
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        if not request_id:
            raise RuntimeAPIError("the Runtime API sent an event without a request id")
        if slot is not None:
            slot.taken(request_id)
        invocation_id = headers.get(INVOCATION_ID_HEADER)
        self._echo = {INVOCATION_ID_HEADER: invocation_id} if invocation_id else {}
        return Invocation(request_id, body, headers)

    def post_response(self, request_id: str, body: bytes | list[bytes], content_type: str) -> None:
        """Deliver the handler's result to the caller: bytes, or pieces sent one after the other."""
        path = f"{_BASE}/invocation/{_quote(request_id)}/response"
        headers = {"Content-Type": content_type, **self._echo}
        if isinstance(body, list):
            headers["Content-Length"] = str(sum(map(len, body)))
        self._call("POST", path, body, headers)

    def open_stream(self, request_id: str, content_type: str) -> ResponseStream:
        """Start a streamed response: each chunk written reaches the caller without waiting for the rest."""
        return ResponseStream(self, f"{_BASE}/invocation/{_quote(request_id)}/response", content_type)

    def post_error(self, request_id: str, error: ErrorDocument, xray_cause: str = "") -> None:
        """Fail the invoke with this error document; ``xray_cause`` puts the exception in the invoke's trace."""
        headers = dict(self._echo)
        if xray_cause and len(xray_cause) < MAX_XRAY_CAUSE:
            headers[XRAY_CAUSE_HEADER] = xray_cause
        self._post_error(f"{_BASE}/invocation/{_quote(request_id)}/error", error, headers)

    def post_init_error(self, error: ErrorDocument, error_type: str | None = None) -> None:
        """Fail the initialisation: Lambda reports it to the caller and restarts the runtime.

        ``error_type`` names the failure for Lambda when it is not the exception's type (SnapStart's hooks).
        """
        self._post_error(f"{_BASE}/init/error", error, {}, error_type)

    def restore_next(self) -> None:
        """SnapStart: wait while Lambda snapshots the initialised runtime; return once a copy of it is restored."""
        self._call("GET", f"{_BASE}/restore/next")

    def post_restore_error(self, error: ErrorDocument, error_type: str) -> None:
        """SnapStart: the restored runtime cannot serve (an after-restore hook failed)."""
        self._post_error(f"{_BASE}/restore/error", error, {}, error_type)

    def _post_error(
        self, path: str, error: ErrorDocument, headers: dict[str, str], error_type: str | None = None
    ) -> None:
        # Header values must be Latin-1; an exception class may be named in any script.
        error_type = (error_type or error["errorType"]).encode("ascii", "replace").decode()
        headers.update({"Content-Type": "application/json", ERROR_TYPE_HEADER: error_type})
        self._call("POST", path, json.dumps(error, ensure_ascii=False).encode(), headers)

    def _call(
        self,
        method: str,
        path: str,
        body: bytes | list[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        sent: Callable[[], None] | None = None,
    ) -> tuple[http11.HTTPMessage, bytes]:
        """One request and its whole answer: (headers, body). ``sent`` is called once the request is out."""
        connection = self._ready_connection()
        try:
            # http11's request and getresponse, on urllib3's connection:
            # urllib3's overrides would build its request options and wrap
            # the answer in its own response, which this client never needs.
            http11.HTTPConnection.request(connection, method, path, body, headers or {})
            if sent is not None:
                sent()
            response = http11.HTTPConnection.getresponse(connection)
            data = response.read()
        except (OSError, http11.HTTPException, HTTPError) as exc:
            raise self._failed(method, path, exc) from None
        self._check(method, path, response.status, data)
        return response.msg, data

    def _receive(self, method: str, path: str) -> tuple[http11.HTTPMessage, bytes]:
        """The answer to a request another process sent on this connection."""
        try:
            response = http11.HTTPResponse(self._connection.sock, method=method)
            response.begin()
            data = response.read()
        except (OSError, http11.HTTPException) as exc:
            raise self._failed(method, path, exc) from None
        if response.will_close:
            self._detach()
        self._check(method, path, response.status, data)
        return response.msg, data

    def _ready_connection(self) -> HTTPConnection:
        connection = self._connection
        # A kept-alive connection the server has since closed: start afresh
        # rather than fail on it. (After `Connection: close`, http11 has
        # already dropped the socket and reconnects by itself.)
        if connection.sock is not None and not connection.is_connected:
            self._detach()
        if self._slot is not None and self._slot.socket is not None and connection.sock is not self._slot.socket:
            self._slot.detached()  # http11 dropped it after `Connection: close`
        return connection

    def _detach(self) -> None:
        """Close the connection; the next request opens another."""
        self._connection.close()
        if self._slot is not None:
            self._slot.detached()

    def _failed(self, method: str, path: str, exc: BaseException) -> RuntimeAPIError:
        self._detach()
        return RuntimeAPIError(f"{method} {path} failed: {exc or type(exc).__name__}")

    def _check(self, method: str, path: str, status: int, data: bytes) -> None:
        self._answered = True
        if status >= 300:
            detail = data[:300].decode("utf-8", "replace").strip()
            message = f"{method} {path} answered {status}: {detail}"
            if 400 <= status < 500:
                raise RuntimeAPIRefused(message, status)
            raise RuntimeAPIError(message)


class ResponseStream:
    """A response POSTed in chunks as the handler produces them, ended by a last chunk that can carry an error.

    urllib3 sends chunked bodies but has no way to add trailers, which is how
    the Runtime API learns that a stream failed half-way. So the stream frames
    the chunks itself on the client's urllib3 connection, and reads the API's
    short answer as every other call does.
    """

    def __init__(self, client: RuntimeAPIClient, path: str, content_type: str) -> None:
        self._client = client
        self._path = path
        self._connection = client._ready_connection()
        headers = {
            "Content-Type": content_type,
            "Lambda-Runtime-Function-Response-Mode": "streaming",
            "Transfer-Encoding": "chunked",
            "Trailer": f"{ERROR_TYPE_HEADER}, {ERROR_BODY_HEADER}",
            **client._echo,
        }
        try:
            self._connection.putrequest("POST", path)
            for name, value in headers.items():
                self._connection.putheader(name, value)
            self._connection.endheaders()
        except (OSError, http11.HTTPException, HTTPError) as exc:
            raise client._failed("POST", path, exc) from None

    def write(self, chunk: bytes) -> None:
        """Send one chunk now."""
        if chunk:  # an empty chunk would end the stream
            self._send(b"%x\r\n%b\r\n" % (len(chunk), chunk))

    def finish(self, error: ErrorDocument | None = None) -> None:
        """End the stream, reporting ``error`` in the trailers if the handler failed half-way."""
        trailers = b""
        if error is not None:
            error_type = error["errorType"].encode("ascii", "replace")
            error_body = binascii.b2a_base64(json.dumps(error, ensure_ascii=False).encode(), newline=False)
            trailers = b"%s: %s\r\n%s: %s\r\n" % (
                ERROR_TYPE_HEADER.encode(),
                error_type,
                ERROR_BODY_HEADER.encode(),
                error_body,
            )
        self._send(b"0\r\n" + trailers + b"\r\n")
        try:
            response = http11.HTTPConnection.getresponse(self._connection)
            data = response.read()
        except (OSError, http11.HTTPException, HTTPError) as exc:
            raise self._client._failed("POST", self._path, exc) from None
        self._client._check("POST", self._path, response.status, data)

    def _send(self, data: bytes) -> None:
        try:
            self._connection.send(data)
        except (OSError, http11.HTTPException, HTTPError) as exc:
            raise self._client._failed("POST", self._path, exc) from None


def open_socket(address: str) -> socket.socket:
    """A connection to the Runtime API as urllib3 would open it (no Nagle delay: each call is one small write)."""
    try:
        connection = socket.create_connection(parse_address(address))
    except OSError as exc:
        raise RuntimeAPIError(f"cannot connect to {address}: {exc}") from None
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as $AWS_LAMBDA_RUNTIME_API gives it; anything else is a RuntimeAPIError."""
    host, _, port = address.rpartition(":")
    if not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise RuntimeAPIError(f"AWS_LAMBDA_RUNTIME_API={address!r} is not host:port, such as 127.0.0.1:9001")
    return host.strip("[]"), int(port)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _quote(request_id: str) -> str:
    """The request id as one path segment: it comes from a header, and must not steer the URL.

    Percent-encodes all but RFC 3986's unreserved characters, as
    ``urllib.parse.quote(..., safe="")`` does, without importing ``urllib.parse``
    (and its regular expressions) on every cold start for a UUID.
    """
    encoded = request_id.encode()
    if _UNRESERVED.issuperset(encoded):
        return request_id
    return "".join(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in encoded)
