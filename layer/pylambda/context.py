"""The ``context`` object handed to the handler with each event.

Its attributes match the managed Python runtime's, so code and libraries
written for it (Powertools, Mangum, Sentry...) work unchanged. Per-invoke
values come from the headers of the ``invocation/next`` answer; per-function
values come from the environment, read once at start-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from . import logs
from .errors import CONTEXT_UNMARSHAL_ERROR, RuntimeFault

if TYPE_CHECKING:
    from typing import Protocol

    class Headers(Protocol):
        """The ``next`` answer's headers, looked up by name without regard to case (an http11 message)."""

        def get(self, name: str, /) -> str | None: ...


REQUEST_ID = "Lambda-Runtime-Aws-Request-Id"
DEADLINE_MS = "Lambda-Runtime-Deadline-Ms"
FUNCTION_ARN = "Lambda-Runtime-Invoked-Function-Arn"
TRACE_ID = "Lambda-Runtime-Trace-Id"
CLIENT_CONTEXT = "Lambda-Runtime-Client-Context"
COGNITO_IDENTITY = "Lambda-Runtime-Cognito-Identity"
TENANT_ID = "Lambda-Runtime-Aws-Tenant-Id"

_T = TypeVar("_T")
# What context.w3c() passes on from the client context's "w3c" object, when they are strings.
W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class FunctionInfo:
    """What the environment says about the function; the same for every invoke."""

    __slots__ = ("function_name", "function_version", "log_group_name", "log_stream_name", "memory_limit_in_mb")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as in the managed runtime: code that does int(...) on it works either way.
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")


class Client:
    """The mobile app that made the call (``client_context.client``)."""

    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self) -> str:
        return _repr(self, self.__slots__)


class ClientContext:
    """``client_context``: what the AWS Mobile SDK or the invoker passed along."""

    __slots__ = ("_w3c", "client", "custom", "env")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = fields.get("custom")
        self.env = fields.get("env")
        # The W3C trace context (OpenTelemetry's propagation), read through context.w3c() only.
        w3c = fields.get("w3c")
        self._w3c = (
            {key: w3c[key] for key in W3C_FIELDS if isinstance(w3c.get(key), str)} if isinstance(w3c, dict) else {}
        )

    def __repr__(self) -> str:
        return _repr(self, ("client", "custom", "env"))


class CognitoIdentity:
    """``identity``: the Amazon Cognito identity of the caller, when there is one."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.cognito_identity_id = fields.get("cognitoIdentityId")
        self.cognito_identity_pool_id = fields.get("cognitoIdentityPoolId")

    def __repr__(self) -> str:
        return _repr(self, self.__slots__)


class LambdaContext:
    """The second argument of every handler call."""

    def __init__(self, function: FunctionInfo, headers: Headers) -> None:
        self.aws_request_id = headers.get(REQUEST_ID) or ""
        self.invoked_function_arn = headers.get(FUNCTION_ARN)
        self.tenant_id = headers.get(TENANT_ID)
        self.function_name = function.function_name
        self.function_version = function.function_version
        self.memory_limit_in_mb = function.memory_limit_in_mb
        self.log_group_name = function.log_group_name
        self.log_stream_name = function.log_stream_name
        self.client_context = _optional_json(headers, CLIENT_CONTEXT, "Client Context", ClientContext)
        # Always an object, as in the managed runtime, so attribute access never fails.
        self.identity = _optional_json(headers, COGNITO_IDENTITY, "Cognito Identity", CognitoIdentity)
        if self.identity is None:
            self.identity = CognitoIdentity({})
        self._deadline_ms = _deadline(headers.get(DEADLINE_MS))

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda stops this invoke; never negative."""
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def w3c(self) -> dict[str, str]:
        """The W3C trace context the invoker sent (``traceparent``, ``tracestate``, ``baggage``), as in the managed
        runtime: the string fields of the client context's ``w3c`` object; empty without one."""
        return dict(self.client_context._w3c) if self.client_context is not None else {}

    def log(self, message: object) -> None:
        """Write to the function's log as it is, like ``context.log`` in the managed runtime."""
        logs.log_raw(str(message))

    def __repr__(self) -> str:
        names = (
            "aws_request_id",
            "function_name",
            "function_version",
            "invoked_function_arn",
            "memory_limit_in_mb",
            "log_group_name",
            "log_stream_name",
            "client_context",
            "identity",
            "tenant_id",
        )
        return _repr(self, names)


def _optional_json(headers: Headers, header: str, what: str, kind: Callable[[Mapping[str, Any]], _T]) -> _T | None:
    """Decode a JSON-object header into ``kind``; a garbled one fails the invoke, not the runtime."""
    raw = headers.get(header)
    if not raw:
        return None
    try:
        fields = json.loads(raw)
    except ValueError as exc:
        raise RuntimeFault(CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {what} JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise RuntimeFault(CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {what} JSON: expected an object")
    return kind(fields)


def _deadline(value: str | None) -> int:
    """The deadline in epoch milliseconds; 0 (no time left) when the header is absent or garbled.

    A deadline in the past is the safe reading: code that checks the remaining
    time before starting more work stops, rather than running into the timeout.
    """
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _repr(obj: object, names: tuple[str, ...]) -> str:
    fields = ", ".join(f"{name}={getattr(obj, name)!r}" for name in names)
    return f"{type(obj).__name__}({fields})"
