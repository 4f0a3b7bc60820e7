"""Streaming responses: a handler that yields sends its response as it goes.

A handler written as a generator (``def`` with ``yield``) or an async
generator streams: each ``bytes`` or ``str`` it yields goes to the caller at
once, through Lambda's response streaming (Function URLs with
``InvokeMode: RESPONSE_STREAM``, ``InvokeWithResponseStream``). Plain handlers
are untouched.

For HTTP callers, the first item may be a dict in the shape of a Function URL
response without its body, ``{"statusCode": 201, "headers": {...},
"cookies": [...]}``: it becomes the status and headers, sent as Lambda's
HTTP-integration prelude (the JSON, then eight NUL bytes, then the body).

A failure before anything was sent is reported like any other; a failure
half-way ends the stream with the error in its trailers, and the caller sees
the stream cut short with that error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import AsyncGeneratorType, GeneratorType
from typing import Any

from . import event_loop, logs
from .errors import MARSHAL_ERROR, USER_CODE_FAILURES, RuntimeFault, error_document
from .runtime_api import RuntimeAPIClient, RuntimeAPIError

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
OCTET_STREAM = "application/octet-stream"
PRELUDE_END = b"\0" * 8


def is_stream(result: object) -> bool:
    """Whether the handler produced a stream rather than a value."""
    return isinstance(result, (GeneratorType, AsyncGeneratorType))


def send(api: RuntimeAPIClient, request_id: str, result: Any) -> None:
    """Stream the handler's items to the caller as the handler yields them."""
    chunks: Iterator[Any] = event_loop.iterate(result) if isinstance(result, AsyncGeneratorType) else result
    # The first item is fetched before the stream opens, so that a handler
    # failing at once gets the ordinary error response.
    # So is a first item that cannot be sent (an int, say): once a byte is
    # out, Lambda's answer is a 200 whatever follows.
    first = next(chunks, None)
    content_type = OCTET_STREAM
    if isinstance(first, Mapping):
        content_type = HTTP_INTEGRATION
        try:
            head = json.dumps(first).encode() + PRELUDE_END
        except (TypeError, ValueError) as exc:
            raise RuntimeFault(MARSHAL_ERROR, f"Unable to marshal the streamed response's prelude: {exc}") from None
    else:
        head = b"" if first is None else _as_bytes(first)
    stream = api.open_stream(request_id, content_type)
    try:
        stream.write(head)
        for chunk in chunks:
            stream.write(_as_bytes(chunk))
    except RuntimeAPIError:
        raise
    except USER_CODE_FAILURES as exc:
        error = error_document(exc, request_id)
        logs.report_error(error)
        stream.finish(error)
    else:
        logs.flush()
        stream.finish()


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    message = f"Unable to marshal response: a streaming handler yields bytes or str, not {type(chunk).__name__}"
    raise RuntimeFault(MARSHAL_ERROR, message)
