"""Turning failures into the error documents the Runtime API expects.

Whatever the runtime POSTs to ``.../error`` is exactly what the caller of the
function receives, so every failure becomes one JSON object with the fields
users of the managed Python runtime already parse: ``errorMessage``,
``errorType``, ``requestId`` and ``stackTrace``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

# Error types the runtime reports itself. The names are AWS's, so alarms and
# retry policies written against the managed runtime keep matching.
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"
INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"

# What user code raising means a failed invoke or init, to report rather than die of:
# every Exception, and sys.exit() or Ctrl-C from inside a handler too. Other
# BaseExceptions (SIGTERM's Shutdown, GeneratorExit) must keep unwinding.
USER_CODE_FAILURES = (Exception, SystemExit, KeyboardInterrupt)

# The credentials Lambda puts in the environment. Nothing the runtime reports
# or formats may carry their values, whatever user code put in a message.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")

# An error document travels in one HTTP body and one log record: a message of
# megabytes helps nobody and could push the document past the API's limits.
MAX_MESSAGE = 64 * 1024
_MAX_CHAIN = 16  # exceptions followed through __cause__ / __context__
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"

# Frames from files under this directory belong to the runtime. They are cut
# from the front of a stack trace: the user wants to see their own code.
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


if TYPE_CHECKING:  # a TypedDict costs about a millisecond to create at import: the checker alone needs it
    from typing import TypedDict

    class ErrorDocument(TypedDict):
        """The JSON body of an ``.../error`` POST."""

        errorMessage: str
        errorType: str
        requestId: str
        stackTrace: list[str]


class RuntimeFault(Exception):
    """A failure the runtime detects itself, with the AWS error type to report."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


def error_document(exc: BaseException, request_id: str = "") -> ErrorDocument:
    """Describe ``exc`` the way the caller of the function will see it, secrets masked."""
    if isinstance(exc, RuntimeFault):
        message, error_type, stack = exc.message, exc.error_type, exc.stack_trace
    else:
        message, error_type, stack = _message_of(exc), type(exc).__name__, user_stack_trace(exc)
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE]}... [truncated: {len(message)} characters in all]"
    return {
        "errorMessage": _encodable(redact_secrets(message)),
        # A class name is one line of text: control characters could split log lines or headers.
        "errorType": "".join(c if c.isprintable() else "?" for c in _encodable(error_type)),
        "requestId": request_id,
        "stackTrace": [_encodable(redact_secrets(entry)) for entry in stack],
    }


def _encodable(text: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate (half a character) becomes its escape, as in ``\\ud800``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def user_stack_trace(exc: BaseException) -> list[str]:
    """The frames that led to ``exc``, its causes first as Python prints them, without the runtime's own frames.

    Each frame is written as the managed runtime writes it: file, line and
    function, then the source line, without 3.11+'s ``^^^`` position lines.
    """
    # traceback pulls in linecache and tokenize: only failures pay for them.
    import traceback

    chain = [exc]
    while len(chain) < _MAX_CHAIN:
        last = chain[-1]
        link = last.__cause__
        if link is None and not last.__suppress_context__:
            link = last.__context__
        if link is None or any(link is seen for seen in chain):
            break
        chain.append(link)
    chain.reverse()  # the root cause first, as Python prints a chain
    entries: list[str] = []
    for index, current in enumerate(chain):
        entries += traceback.format_list(user_frames(current))  # type: ignore[arg-type]  # (a line may be None)
        if index + 1 < len(chain):  # joined to the next exception as Python's own traceback does
            entries.append(f"{type(current).__name__}: {_message_of(current)}\n")
            joint = _CAUSE if chain[index + 1].__cause__ is current else _CONTEXT
            entries.append(f"\n{joint}\n\n")
    return entries


def user_frames(exc: BaseException) -> list[tuple[str, int | None, str, str | None]]:
    """``exc``'s frames as (file, line, function, source), from the first that is not the runtime's."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_RUNTIME_DIR):
        tb = tb.tb_next
    # Plain tuples, not FrameSummary: formatted, they carry no column positions, so no caret lines.
    return [(frame.filename, frame.lineno, frame.name, frame.line) for frame in traceback.extract_tb(tb)]


def xray_cause(exc: BaseException) -> str:
    """The exception as X-Ray records it on the invoke's trace: the ``Lambda-Runtime-Function-XRay-Error-Cause``.

    The managed runtime's fields: the working directory, the exception's
    type, message and frames, and the files the frames are in. A failure the
    runtime found itself is a ``LambdaValidationError`` without frames.
    ASCII-only JSON, as a header must be; credentials masked.
    """
    if isinstance(exc, RuntimeFault):
        kind, message, frames = "LambdaValidationError", exc.message, []
    else:
        kind, message, frames = type(exc).__name__, _message_of(exc), user_frames(exc)
    stack = [{"label": name, "path": path, "line": line} for path, line, name, _ in frames]
    cause = {
        "working_directory": os.getcwd(),
        "exceptions": [{"message": message, "type": kind, "stack": stack}],
        "paths": list(dict.fromkeys(path for path, _, _, _ in frames)),
    }
    return redact_secrets(json.dumps(cause))


def redact_secrets(text: str) -> str:
    """Mask the values of the credential variables wherever they appear in ``text``."""
    for name in SECRET_VARIABLES:
        secret = os.environ.get(name, "")
        # Short values would mask ordinary text and are not credentials anyway.
        if len(secret) >= 8 and secret in text:
            text = text.replace(secret, f"<{name} redacted>")
    return text


def _message_of(exc: BaseException) -> str:
    """``str(exc)``, which user code can make raise; a report must still go out."""
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__} object>"
