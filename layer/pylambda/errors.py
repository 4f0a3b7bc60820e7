"""Turning failures into the error documents the Runtime API expects.

Whatever the runtime POSTs to ``.../error`` is exactly what the caller of the
function receives, so every failure becomes one JSON object with the fields
users of the managed Python runtime already parse: ``errorMessage``,
``errorType``, ``requestId`` and ``stackTrace``.
"""

from __future__ import annotations

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

# Frames from files under this directory belong to the runtime. They are cut
# from the front of a stack trace: the user wants to see their own code.
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


if TYPE_CHECKING:  # a TypedDict costs about a millisecond to create at import: the checker alone needs it
    from types import TracebackType
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
    """Describe ``exc`` the way the caller of the function will see it."""
    if isinstance(exc, RuntimeFault):
        return {
            "errorMessage": exc.message,
            "errorType": exc.error_type,
            "requestId": request_id,
            "stackTrace": exc.stack_trace,
        }
    return {
        "errorMessage": _message_of(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": user_stack_trace(exc.__traceback__),
    }


def user_stack_trace(tb: TracebackType | None) -> list[str]:
    """Format a traceback as a list of frames, minus the runtime's own leading frames."""
    # traceback pulls in linecache and tokenize: only failures pay for them.
    import traceback

    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_RUNTIME_DIR):
        tb = tb.tb_next
    return traceback.format_list(traceback.extract_tb(tb))


def _message_of(exc: BaseException) -> str:
    """``str(exc)``, which user code can make raise; a report must still go out."""
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__} object>"
