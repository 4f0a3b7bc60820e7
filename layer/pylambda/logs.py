"""Function logs: one CloudWatch event per record, request ids on every record, text or JSON.

Lambda collects whatever the process writes to stdout and stderr, and makes
one log event of each line. This module tags ``logging`` records with the
current request id, formats them the way the managed Python runtime does
(tab-separated text by default, one JSON object per record with
``AWS_LAMBDA_LOG_FORMAT=JSON``; ``AWS_LAMBDA_LOG_LEVEL`` sets the root
logger's level), and sends each record, and each report of a failed invoke or
init, as one event, tracebacks and multi-line messages included:

- When Lambda hands the runtime a telemetry descriptor
  (``_LAMBDA_TELEMETRY_LOG_FD``), as one frame on it, in the managed runtime's
  format; the frame's type carries the level in JSON format, which is how
  Lambda's log-level filtering sees it.
- Otherwise as one line on stdout, its inner line breaks written as ``\r``
  (which CloudWatch keeps inside the event).

``print`` output stays on stdout as it is, as in the managed runtime. The
module also makes sure nothing sits in a buffer when an invoke ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from . import request_context
from .errors import redact_secrets

if TYPE_CHECKING:
    from .errors import ErrorDocument

_as_json = False
# With a log level set, text records' frames carry their level too, as the managed runtime's do.
_leveled_frames = False
TELEMETRY_FD = "_LAMBDA_TELEMETRY_LOG_FD"
# The managed runtime indents a failure's traceback in text logs with no-break spaces.
_INDENT = "\u00a0"

# Lambda's level names, mapped onto the logging module's.
_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
    "NOTSET": logging.NOTSET,
}

# The LogRecord attributes that a JSON record leaves out, as the managed runtime
# does; anything else on a record (`extra=`, taskName inside an asyncio task)
# becomes a field of the JSON object.
_RECORD_FIELDS = frozenset(
    {
        *("name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info", "exc_text"),
        *("stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName"),
        *("processName", "process", "aws_request_id", "tenant_id"),
    }
)


def install(environ: MutableMapping[str, str]) -> None:
    """Set up stdout, the telemetry descriptor and the root logger for the life of the process."""
    global _as_json, _leveled_frames, _write
    _as_json = environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    _leveled_frames = _as_json or bool(environ.get("AWS_LAMBDA_LOG_LEVEL"))
    # Taken out of the environment, so that the user's code and its child processes never see it.
    descriptor = environ.pop(TELEMETRY_FD, None)
    if descriptor is not None:
        _write = _telemetry_writer(descriptor)
    # Line buffering: every complete line reaches Lambda as soon as it is
    # written, and a crash cannot take buffered lines with it. The runtime
    # flushes after each invoke for output without a trailing newline.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)

    previous_factory = logging.getLogRecordFactory()

    def record_with_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
        # On the record itself, not a handler filter, so handlers the user
        # adds can use %(aws_request_id)s too.
        record = previous_factory(*args, **kwargs)
        record.aws_request_id = request_context.request_id()
        record.tenant_id = request_context.tenant_id()
        return record

    logging.setLogRecordFactory(record_with_ids)

    handler = _EventHandler()
    handler.setFormatter(JsonFormatter() if _as_json else TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = _LEVELS.get(environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper())
    if level is not None:
        root.setLevel(level)


def connect_output(path: str) -> None:
    """Send this process's stdout and stderr to a Unix socket of Lambda's, one connection each, as lines.

    How a worker's output reaches Lambda's log egress in Lambda Managed
    Instances (``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET``): each record and
    error report stays one line, so one event.
    """
    global _write
    import socket

    flush()
    for fd in (1, 2):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(path)
            os.dup2(connection.fileno(), fd)
    _write = _write_line


def flush() -> None:
    """Push out anything the handler wrote without a final newline."""
    for stream in (sys.stdout, sys.stderr):
        # User code may have closed or replaced a stream: its loss, not the runtime's.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


class TextFormatter(logging.Formatter):
    """``[LEVEL]<tab>timestamp<tab>request id<tab>message``, in UTC, then the traceback if there is one.

    The managed runtime's layout to the byte, trailing newline included (one
    event either way: see ``_write_line``).
    """

    converter = time.gmtime  # type: ignore[assignment]  # typeshed's signature is narrower than gmtime's

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the managed runtime's fields in its order.

    ``timestamp`` (to the second, UTC), ``level`` (the standard level at or
    below the record's), ``message`` (a dict logged alone stays a dict),
    ``logger``; with an exception ``stackTrace``, ``errorType``,
    ``errorMessage`` and ``location``; ``requestId``, ``tenantId`` and
    ``extra=`` fields. Fields that are None are left out.
    """

    def format(self, record: logging.LogRecord) -> str:
        exc_type, exc, tb = record.exc_info or (None, None, None)
        failed = exc is not None
        stack = None
        if failed:
            import traceback  # only records with an exception pay for it

            stack = traceback.format_tb(tb)
        document: dict[str, Any] = {
            "timestamp": _to_the_second(record.created),
            "level": logging.getLevelName(_standard_level(record.levelno)),
            "message": record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": stack,
            "errorType": exc_type.__name__ if exc_type is not None and failed else None,
            "errorMessage": str(exc) if failed else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if failed else None,
            "tenantId": getattr(record, "tenant_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in document:
                document[key] = value
        # default=str: a record with an odd `extra` value is still logged, not dropped.
        text = json.dumps({k: v for k, v in document.items() if v is not None}, ensure_ascii=False, default=str)
        return redact_secrets(text) + "\n"


def _to_the_second(epoch: float) -> str:
    """A JSON record's timestamp as the managed runtime writes it: ISO 8601, UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _standard_level(level: int) -> int:
    """The standard level a record's level counts as: 25 is INFO, 60 CRITICAL."""
    return min(50, max(0, level)) // 10 * 10


def report_error(error: ErrorDocument) -> None:
    """Log a failed invoke or init, so it shows in the function's logs as well as to the caller.

    In the managed runtime's layout: text starts ``[ERROR] Type: message``,
    then the traceback, indented with no-break spaces; JSON is the error
    document with a timestamp (to the second) and the level first.
    """
    now = time.time()
    if _as_json:
        text = json.dumps({"timestamp": _to_the_second(now), "level": "ERROR", **error}, ensure_ascii=False)
    else:
        head = "[ERROR]"
        if error["errorType"]:
            head += f" {error['errorType']}"
        if error["errorMessage"]:
            head += f"{':' if error['errorType'] else ''} {error['errorMessage']}"
        lines = [head, "Traceback (most recent call last):"]
        for entry in error["stackTrace"]:
            lines += [_INDENT * (len(line) - len(line.lstrip(" "))) + line.lstrip(" ") for line in entry.splitlines()]
            if not entry:
                lines.append("")
        text = "\n".join(lines)
    _write(text, logging.ERROR, now)


def debugging() -> bool:
    """Whether the function's log level lets DEBUG records through (AWS_LAMBDA_LOG_LEVEL=DEBUG)."""
    return logging.getLogger("pylambda").isEnabledFor(logging.DEBUG)


def debug(message: str) -> None:
    """A line of the runtime's own at DEBUG level, written as the function's records are."""
    logging.getLogger("pylambda").debug(message)


def log_raw(message: str) -> None:
    """``context.log``: the message as it is, as one event where Lambda gave the runtime a telemetry descriptor."""
    if _write is _write_line:
        sys.stdout.write(message)
    else:
        _write(message, None, time.time())


class _EventHandler(logging.Handler):
    """The runtime's handler on the root logger: each record becomes one log event."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record whose message cannot be formatted: logging's own report, as for any handler
            self.handleError(record)
            return
        # In text format without a log level, the managed runtime's frames carry no level.
        _write(text, record.levelno if _leveled_frames else None, record.created)


def _write_line(text: str, level: int | None, created: float) -> None:
    """One event on stdout: one line, inner line breaks as carriage returns."""
    text = text[:-1] if text.endswith("\n") else text
    line = text.replace("\r\n", "\r").replace("\n", "\r") + "\n"
    try:
        sys.stdout.write(line)
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):  # stdout closed or replaced by user code
        # If even stderr's descriptor is gone, the caller still gets the error document.
        with contextlib.suppress(OSError):
            os.write(2, line.encode("utf-8", "backslashreplace"))


_write: Callable[[str, int | None, float], None] = _write_line

# The managed runtime's frame types: one base for JSON (one more for text),
# plus the level's step. A frame without a level carries neither.
_FRAME_JSON, _FRAME_TEXT = 0xA55A0002, 0xA55A0003
_FRAME_LEVELS = (
    (logging.CRITICAL, 0x18),
    (logging.ERROR, 0x14),
    (logging.WARNING, 0x10),
    (logging.INFO, 0xC),
    (logging.DEBUG, 0x8),
)


def _frame_step(level: int | None) -> int:
    """The frame type's step for a level: that of the highest standard level it reaches."""
    if level is not None:
        for threshold, step in _FRAME_LEVELS:
            if level >= threshold:
                return step
    return 0


def _telemetry_writer(descriptor: str) -> Callable[[str, int | None, float], None]:
    """A writer of frames to Lambda's telemetry descriptor, or stdout lines if the descriptor is unusable."""
    try:
        fd = int(descriptor)
        os.set_inheritable(fd, False)  # nor does a program user code runs get the descriptor
    except (ValueError, OSError) as exc:
        sys.stderr.write(
            f"pylambda: {TELEMETRY_FD}={descriptor!r} is not an open descriptor ({exc}); logging to stdout\n"
        )
        return _write_line
    import fcntl
    import struct
    import threading

    base = _FRAME_JSON if _as_json else _FRAME_TEXT
    header = struct.Struct(">IIQ")  # type, length, timestamp in microseconds; big-endian, as Lambda reads them
    # One frame is one write, under a lock for this process's threads and a
    # record lock on the descriptor for the other worker processes that share
    # it: frames never interleave, whatever their size or the descriptor's kind.
    threads = threading.Lock()

    def write_frame(text: str, level: int | None, created: float) -> None:
        message = text.encode("utf-8", "backslashreplace")
        frame = memoryview(header.pack(base + _frame_step(level), len(message), int(created * 1_000_000)) + message)
        with threads:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            try:
                while frame:
                    frame = frame[os.write(fd, frame) :]
            except OSError:  # the descriptor is gone: what remains of the logs goes to stdout
                global _write
                _write = _write_line
                _write_line(text, level, created)
            finally:
                with contextlib.suppress(OSError):
                    fcntl.lockf(fd, fcntl.LOCK_UN)

    return write_frame
