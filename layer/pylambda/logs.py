"""Function logs: prompt output, request ids on every record, text or JSON.

Lambda collects whatever the process writes to stdout and stderr. This module
makes sure nothing sits in a buffer when an invoke ends, tags ``logging``
records with the current request id, and formats them the way the managed
Python runtime does: tab-separated text by default, one JSON object per record
with ``AWS_LAMBDA_LOG_FORMAT=JSON``. ``AWS_LAMBDA_LOG_LEVEL`` sets the root
logger's level.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import request_context
from .errors import error_document, redact_secrets

if TYPE_CHECKING:
    from .errors import ErrorDocument

_as_json = False

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
}

# Attributes every LogRecord has; anything else on a record came from `extra=`
# and belongs in the JSON object.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "aws_request_id",
    "tenant_id",
}


def install(environ: Mapping[str, str]) -> None:
    """Set up stdout and the root logger for the life of the process."""
    global _as_json
    _as_json = environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
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

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if _as_json else TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = _LEVELS.get(environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper())
    if level is not None:
        root.setLevel(level)


def flush() -> None:
    """Push out anything the handler wrote without a final newline."""
    for stream in (sys.stdout, sys.stderr):
        # User code may have closed or replaced a stream: its loss, not the runtime's.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


class TextFormatter(logging.Formatter):
    """``[LEVEL]<tab>timestamp<tab>request id<tab>message``, in UTC."""

    converter = time.gmtime  # type: ignore[assignment]  # typeshed's signature is narrower than gmtime's

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the fields CloudWatch Logs Insights expects."""

    def format(self, record: logging.LogRecord) -> str:
        # A dict logged on its own stays structured rather than becoming its repr.
        message = record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        document: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "message": message,
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", ""),
        }
        tenant_id = getattr(record, "tenant_id", None)
        if tenant_id is not None:
            document["tenantId"] = tenant_id
        if record.exc_info and record.exc_info[1] is not None:
            error = error_document(record.exc_info[1])
            document["errorType"] = error["errorType"]
            document["errorMessage"] = error["errorMessage"]
            document["stackTrace"] = error["stackTrace"]
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in document:
                document[key] = value
        # default=str: a record with an odd `extra` value is still logged, not dropped.
        return redact_secrets(json.dumps(document, ensure_ascii=False, default=str))


def report_error(error: ErrorDocument) -> None:
    """Log a failed invoke or init, so it shows in the function's logs as well as to the caller."""
    if _as_json:
        line = json.dumps({"timestamp": _timestamp(time.time()), "level": "ERROR", **error}, ensure_ascii=False)
    else:
        ids = f"[ERROR]\t{_timestamp(time.time())}\t{error['requestId']}"
        head = f"{ids}\t{error['errorType']}: {error['errorMessage']}"
        trace = "".join(error["stackTrace"])
        line = f"{head}\nTraceback (most recent call last):\n{trace}".rstrip("\n") if trace else head
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):  # stdout closed or replaced by user code
        # If even stderr's descriptor is gone, the caller still gets the error document.
        with contextlib.suppress(OSError):
            os.write(2, (line + "\n").encode())


def _timestamp(epoch: float) -> str:
    """ISO 8601 in UTC with milliseconds, like Lambda's own log lines."""
    seconds = int(epoch)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((epoch - seconds) * 1000):03d}Z"
