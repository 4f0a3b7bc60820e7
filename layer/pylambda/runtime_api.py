"""The HTTP client for the Lambda Runtime API (``$AWS_LAMBDA_RUNTIME_API``).

Four calls make the whole protocol: fetch the next event, post its result,
post its error, or post an init error. The API is a local HTTP/1.1 server that
only this process talks to, so the client holds a single urllib3
``HTTPConnection`` rather than a pool: no pool queue, retry or per-call
timeout objects on the path every invoke takes twice. The connection is kept
open while the server allows it (the emulator does, for HTTP/1.1 clients that
do not ask it to close); after an answer with ``Connection: close`` it
reopens on the next call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http.client import HTTPException
from typing import TYPE_CHECKING

from ._vendor.urllib3.connection import HTTPConnection
from ._vendor.urllib3.exceptions import HTTPError
from ._vendor.urllib3.response import HTTPResponse

if TYPE_CHECKING:
    from .errors import ErrorDocument

_BASE = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


class RuntimeAPIError(Exception):
    """The Runtime API could not be reached or refused a call."""


class Invocation:
    """One event to handle: its request id, raw body and the ``next`` answer's headers."""

    __slots__ = ("body", "headers", "request_id")

    def __init__(self, request_id: str, body: bytes, headers: Mapping[str, str]) -> None:
        self.request_id = request_id
        self.body = body
        self.headers = headers


class RuntimeAPIClient:
    """Speaks the Runtime API over one reusable connection."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        # No timeout: `next` blocks for as long as there is no event, and
        # Lambda freezes the process meanwhile.
        self._connection = HTTPConnection(host.strip("[]"), int(port), timeout=None)

    def next_invocation(self) -> Invocation:
        """Block until Lambda has an event for this runtime."""
        response = self._call("GET", f"{_BASE}/invocation/next")
        headers = response.headers
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        if not request_id:
            raise RuntimeAPIError("the Runtime API sent an event without a request id")
        return Invocation(request_id, response.data, headers)

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        """Deliver the handler's result to the caller."""
        self._call("POST", f"{_BASE}/invocation/{request_id}/response", body, {"Content-Type": content_type})

    def post_error(self, request_id: str, error: ErrorDocument) -> None:
        """Fail the invoke with this error document."""
        self._post_error(f"{_BASE}/invocation/{request_id}/error", error)

    def post_init_error(self, error: ErrorDocument) -> None:
        """Fail the initialisation: Lambda reports it to the caller and restarts the runtime."""
        self._post_error(f"{_BASE}/init/error", error)

    def _post_error(self, path: str, error: ErrorDocument) -> None:
        # Header values must be Latin-1; an exception class may be named in any script.
        error_type = error["errorType"].encode("ascii", "replace").decode()
        headers = {"Content-Type": "application/json", ERROR_TYPE_HEADER: error_type}
        self._call("POST", path, json.dumps(error, ensure_ascii=False).encode(), headers)

    def _call(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> HTTPResponse:
        connection = self._connection
        # A kept-alive connection the server has since closed: start afresh
        # rather than fail on it. (After `Connection: close`, http.client has
        # already dropped the socket and reconnects by itself.)
        if connection.sock is not None and not connection.is_connected:
            connection.close()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (OSError, HTTPException, HTTPError) as exc:
            connection.close()
            raise RuntimeAPIError(f"{method} {path} failed: {exc!r}") from None
        if response.status >= 300:
            detail = response.data[:200].decode("utf-8", "replace")
            raise RuntimeAPIError(f"{method} {path} answered {response.status}: {detail}")
        return response
