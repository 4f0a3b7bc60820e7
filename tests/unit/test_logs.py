"""Log formatting and set-up: request ids on records, text and JSON formats, levels."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from pylambda.logs import JsonFormatter, TextFormatter

LAYER = Path(__file__).resolve().parents[2] / "layer"


def record(message: object, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            exc_info = sys.exc_info()
    fields = {
        "name": "orders",
        "levelno": logging.WARNING,
        "levelname": "WARNING",
        "msg": message,
        "args": args or None,
        "exc_info": exc_info,
        "aws_request_id": "req-9",
        "tenant_id": None,
        **extra,
    }
    return logging.makeLogRecord(fields)


def test_text_format_is_level_timestamp_request_id_message() -> None:
    line = TextFormatter().format(record("stock low: %d left", 3))
    assert re.fullmatch(r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\treq-9\tstock low: 3 left", line)


def test_json_format_has_the_standard_fields() -> None:
    document = json.loads(JsonFormatter().format(record("stock low: %d left", 3)))
    assert document["level"] == "WARNING"
    assert document["message"] == "stock low: 3 left"
    assert document["logger"] == "orders"
    assert document["requestId"] == "req-9"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["timestamp"])
    assert "tenantId" not in document


def test_json_format_keeps_dict_messages_and_extra_fields_structured() -> None:
    document = json.loads(JsonFormatter().format(record({"order": 7}, sku="A-1", tenant_id="t-1")))
    assert document["message"] == {"order": 7}
    assert document["sku"] == "A-1"
    assert document["tenantId"] == "t-1"


def test_json_format_describes_the_exception() -> None:
    document = json.loads(JsonFormatter().format(record("failed", exc=True)))
    assert document["errorType"] == "ValueError"
    assert document["errorMessage"] == "bad value"
    assert any("raise ValueError" in frame for frame in document["stackTrace"])


def test_json_format_survives_values_json_cannot_hold() -> None:
    document = json.loads(JsonFormatter().format(record("odd", thing=object())))
    assert document["thing"].startswith("<object object")


def run_with_logging(env: dict[str, str], code: str) -> str:
    """Run code after logs.install() in a fresh interpreter and return what it printed."""
    program = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(LAYER)!r})
        from pylambda import logs
        logs.install(os.environ)
        from pylambda import request_context
        request_context.enter("req-7", None, None)
    """) + textwrap.dedent(code)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA_LOG")}
    done = subprocess.run(
        [sys.executable, "-c", program], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_records_from_any_logger_carry_the_request_id() -> None:
    out = run_with_logging({}, "import logging; logging.getLogger('app').warning('careful')")
    assert "\treq-7\tcareful" in out


def test_default_level_is_python_default_warning() -> None:
    out = run_with_logging({}, "import logging; logging.info('hidden'); logging.warning('shown')")
    assert "hidden" not in out
    assert "shown" in out


def test_log_level_variable_filters_records() -> None:
    code = "import logging; logging.debug('dbg'); logging.info('inf'); logging.error('err')"
    assert "dbg" in run_with_logging({"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}, code)
    out = run_with_logging({"AWS_LAMBDA_LOG_LEVEL": "ERROR"}, code)
    assert "inf" not in out
    assert "err" in out


def test_json_log_format_gives_one_object_per_line() -> None:
    out = run_with_logging(
        {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"},
        "import logging; logging.info('one'); logging.getLogger('x').info('two\\nlines')",
    )
    documents = [json.loads(line) for line in out.splitlines()]
    assert [d["message"] for d in documents] == ["one", "two\nlines"]
    assert {d["requestId"] for d in documents} == {"req-7"}


def test_user_handlers_can_format_the_request_id() -> None:
    code = """
        import logging, sys
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter('mine %(aws_request_id)s %(message)s'))
        logger = logging.getLogger('custom'); logger.propagate = False; logger.addHandler(handler)
        logger.warning('hello')
    """
    assert "mine req-7 hello" in run_with_logging({}, code)


def test_printed_lines_reach_the_pipe_at_once_even_if_the_process_dies() -> None:
    # os._exit skips every flush: only line buffering gets these out.
    code = "import logging; print('printed'); logging.warning('logged'); os._exit(0)"
    out = run_with_logging({}, code)
    assert "printed\n" in out
    assert "logged" in out
