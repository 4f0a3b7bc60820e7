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

import pytest
from pylambda.logs import JsonFormatter, TextFormatter

from tests.frames import JSON_ERROR, JSON_WARNING, TEXT, TEXT_ERROR, read_frames

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
    assert re.fullmatch(r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\treq-9\tstock low: 3 left\n", line)


def test_json_format_has_the_standard_fields() -> None:
    document = json.loads(JsonFormatter().format(record("stock low: %d left", 3)))
    assert document["level"] == "WARNING"
    assert document["message"] == "stock low: 3 left"
    assert document["logger"] == "orders"
    assert document["requestId"] == "req-9"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["timestamp"])
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


def run_with_logging(env: dict[str, str], code: str, pass_fds: tuple[int, ...] = ()) -> str:
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
        [sys.executable, "-c", program],
        env={**clean, **env},
        capture_output=True,
        check=True,
        pass_fds=pass_fds,
    )
    return done.stdout.decode()  # not text=True, whose universal newlines would turn \r into \n


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


THREE_EVENTS = """
    import logging
    from pylambda import errors
    logging.warning("first line\\nsecond line")
    try:
        raise KeyError("missing")
    except KeyError:
        logging.exception("lookup failed")
        error = errors.error_document(KeyError("missing"), "req-7")
    error["stackTrace"] = ['  File "app.py", line 3, in handler\\n    raise KeyError("missing")\\n']
    logs.report_error(error)
    print("printed\\nas it is")
    print("environ has it:", logs.TELEMETRY_FD in os.environ)
"""


def test_without_a_descriptor_each_record_and_report_is_one_stdout_line() -> None:
    lines = run_with_logging({}, THREE_EVENTS).split("\n")[:-1]  # (splitlines() would split at \r too)
    assert len(lines) == 6, lines  # three events, then print's own lines untouched
    assert lines[0].endswith("\tfirst line\rsecond line")
    assert "\tlookup failed\rTraceback (most recent call last):\r" in lines[1]
    indent = "\u00a0"  # the managed runtime indents a failure's traceback with no-break spaces
    traceback = f'Traceback (most recent call last):\r{indent * 2}File "app.py", line 3, in handler\r'
    assert lines[2] == f"[ERROR] KeyError: 'missing'\r{traceback}{indent * 4}raise KeyError(\"missing\")"
    assert lines[3:5] == ["printed", "as it is"]


CONTEXT_LOG = """
    from pylambda.context import FunctionInfo, LambdaContext
    context = LambdaContext(FunctionInfo(os.environ), {})
    context.log("first\\nsecond")
    context.log("no newline")
"""


def test_context_log_writes_the_message_as_it_is_to_stdout_or_as_one_frame(tmp_path: Path) -> None:
    assert run_with_logging({}, CONTEXT_LOG) == "first\nsecondno newline"
    path = tmp_path / "telemetry"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        out = run_with_logging({"_LAMBDA_TELEMETRY_LOG_FD": str(fd)}, CONTEXT_LOG, (fd,))
    finally:
        os.close(fd)
    # As the managed runtime's context.log does with a descriptor: a frame without a level, the message untouched.
    assert [(kind, message) for kind, _, message in read_frames(path.read_bytes())] == [
        (TEXT, "first\nsecond"),
        (TEXT, "no newline"),
    ]
    assert out == ""


@pytest.mark.parametrize(
    ("log_format", "types"), [("text", [TEXT, TEXT, TEXT_ERROR]), ("JSON", [JSON_WARNING, JSON_ERROR, JSON_ERROR])]
)
def test_with_a_descriptor_each_record_and_report_is_one_frame_and_nothing_else_goes_to_stdout(
    log_format: str, types: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "telemetry"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        out = run_with_logging(
            {"AWS_LAMBDA_LOG_FORMAT": log_format, "_LAMBDA_TELEMETRY_LOG_FD": str(fd)}, THREE_EVENTS, (fd,)
        )
    finally:
        os.close(fd)
    frames = read_frames(path.read_bytes())
    assert [kind for kind, _, _ in frames] == types
    messages = [message for _, _, message in frames]
    assert "first line\nsecond line" in (json.loads(messages[0])["message"] if log_format == "JSON" else messages[0])
    assert "lookup failed" in messages[1] and "KeyError" in messages[1]
    assert "missing" in messages[2] and "line 3, in handler" in messages[2]
    assert out == "printed\nas it is\nenviron has it: False\n"  # print stays on stdout; the variable is gone


def test_frames_written_at_once_by_threads_and_processes_never_interleave(tmp_path: Path) -> None:
    # Records of 200 kB, far past what a pipe writes in one piece, from 4 threads in each of 3 processes.
    code = """
        import logging, threading
        logging.getLogger().setLevel(logging.INFO)
        def log(tag):
            for n in range(5):
                logging.info("%s-%d:%s", tag, n, tag[-1] * 200_000)
        pids = []
        for _ in range(2):  # the parent and two children
            pids.append(os.fork())
            if pids[-1] == 0:
                break
        threads = [threading.Thread(target=log, args=(f"{os.getpid()}.{t}",)) for t in range(4)]
        for thread in threads: thread.start()
        for thread in threads: thread.join()
        if 0 in pids:
            os._exit(0)
        for pid in pids: os.waitpid(pid, 0)
    """
    read, write = os.pipe()
    chunks: list[bytes] = []
    import threading

    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(read, 65536), b"")))
    reader.start()
    try:
        run_with_logging({"_LAMBDA_TELEMETRY_LOG_FD": str(write)}, code, (write,))
    finally:
        os.close(write)
        reader.join()
        os.close(read)
    frames = read_frames(b"".join(chunks))
    assert len(frames) == 3 * 4 * 5
    for _, _, message in frames:
        tag = message.split("\t")[3].split(":")[0]
        assert message.endswith(":" + tag.split("-")[0][-1] * 200_000 + "\n")
