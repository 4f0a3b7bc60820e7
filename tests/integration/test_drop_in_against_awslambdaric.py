"""A function moved from the managed Python runtime: the caller, the logs and X-Ray get what they got there.

Each test runs the same handler under pylambda and under awslambdaric (the
managed runtime's client, set up as the managed Python 3.13 runtime sets it
up: ``AWS_EXECUTION_ENV=AWS_Lambda_python3.13``), in the same run, under the
same real emulator, and compares what came out: result bodies byte for byte,
error documents field by field (the request ids differ), and log output once
timestamps and request ids are masked. What the emulator cannot carry (an
X-Ray error cause, an invocation id, a W3C client context, a non-JSON event)
is compared against a scripted Runtime API, both runtimes again.

Two differences are kept on purpose and named where they show: pylambda writes
each log record as one event (a multi-line record's line breaks as ``\\r``),
where the official client writes them as they are (a multi-line record
becomes several CloudWatch events), and an exception record's traceback keeps
its own line end.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pylambda_build.emulator import Emulator
from testkit import baseline
from tests.frames import read_frames
from tests.scripted_api import ScriptedAPI, runtime_environment

Start = Callable[..., Emulator]

HANDLER = r"""
import collections, datetime, decimal, logging, math

logger = logging.getLogger("orders")
Point = collections.namedtuple("Point", "x y")


class OutOfStock(Exception):
    pass


def check_stock(sku):
    raise OutOfStock(f"sku {sku} is out of stock")


RESULTS = {
    "decimal digits": lambda: {"d": decimal.Decimal("3.14159265358979323846264")},
    "decimal exponent": lambda: {"l": [decimal.Decimal("1E+2")], "price": decimal.Decimal("19.90")},
    "decimal specials": lambda: [decimal.Decimal("NaN"), decimal.Decimal("-Infinity"), decimal.Decimal("-0")],
    "nested bytes": lambda: {"b": b"abc", "deep": [{"x": "été".encode()}]},
    "bytes not utf-8": lambda: {"b": b"\xff"},
    "namedtuple": lambda: Point(1, "x"),
    "nan and infinity": lambda: [math.nan, math.inf, -math.inf],
    "unicode": lambda: {"greeting": "grüß dich ☃ 日本 🎉", "quote": 'a "b" \\ c\n'},
    "tuples": lambda: (1, (2, 3), ()),
    "int keys": lambda: {1: "a", 2: {3: "b"}},
    "big ints": lambda: [2**64, -(2**100), 10**300],
    "set": lambda: {1, 2},
    "datetime": lambda: {"at": datetime.datetime(2026, 12, 3, 16, 0)},
    "object": lambda: object(),
    "bytes result": lambda: b"\x00raw\xff",
    "string result": lambda: "plain text",
}


def handler(event, context):
    case = event["case"] if isinstance(event, dict) else "raw event"
    if case == "raw event":
        return {"type": type(event).__name__, "value": event.decode()}
    if case == "divide":
        return 1 / 0
    if case == "custom":
        return check_stock(42)
    if case == "huge":
        raise ValueError("x" * 2_000_000)
    if case == "w3c":
        return context.w3c()
    if case == "log":
        logger.info("fetched %d orders", 3)
        logger.warning("one line")
        logger.warning("two\nlines")
        logger.log(25, "between info and warning", extra={"order": 7})
        logger.error({"structured": True})
        try:
            {}["sku"]
        except KeyError:
            logger.exception("lookup failed")
        return "logged"
    return RESULTS[case]()
"""

RESULT_CASES = [
    "decimal digits",
    "decimal exponent",
    "decimal specials",
    "nested bytes",
    "namedtuple",
    "nan and infinity",
    "unicode",
    "tuples",
    "int keys",
    "big ints",
    "bytes result",
    "string result",
]
FAILING_CASES = ["divide", "custom", "set", "datetime", "object", "bytes not utf-8"]
MANAGED_313 = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"}
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
EMULATOR_LINE = re.compile(r"\d\d \w{3} \d{4} \d\d:\d\d:\d\d,\d{3} \[\w+\] \(rapid\) ")


@pytest.fixture(scope="module")
def official_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return baseline.packages(tmp_path_factory.mktemp("awslambdaric"))


@pytest.fixture
def task(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "app.py").write_text(HANDLER)
    return root


@pytest.fixture
def both(
    emulator: Start, bare_python_dir: Path, official_client: Path, task: Path
) -> Callable[..., dict[str, tuple[list[bytes], str]]]:
    """Send the same events to both runtimes: each one's (answer bodies, runtime output of each invoke)."""

    def run(events: list[bytes], env: Mapping[str, str] | None = None) -> dict[str, tuple[list[bytes], str]]:
        environ = {**MANAGED_313, **(env or {})}
        official = Emulator(
            bare_python_dir / "python3",
            task,
            env={**environ, "PYTHONPATH": str(official_client)},
            args=["-m", "awslambdaric", "app.handler"],
        )
        answers = {}
        for name, em in (("pylambda", emulator(task, env=environ)), ("awslambdaric", official)):
            with em:
                bodies = [em.invoke(event).body for event in events]
                logs = em.wait_for_output("END RequestId", timeout=5)
                deadline = time.monotonic() + 5
                while logs.count("END RequestId") < len(events) and time.monotonic() < deadline:
                    logs = em.wait_for_output("END RequestId", timeout=0.1)
            answers[name] = (bodies, runtime_output(logs))
        return answers

    return run


def runtime_output(logs: str) -> str:
    """What the runtime wrote during its invokes, without the emulator's own lines; ids and times masked."""
    parts = []
    for chunk in logs.split("INVOKE START(")[1:]:
        written = chunk.split(")\n", 1)[1]
        parts.append(EMULATOR_LINE.split(written, maxsplit=1)[0])
    return TIMESTAMP.sub("<time>", REQUEST_ID.sub("<id>", "".join(parts)))


def line_of(code: str) -> int:
    """The line of HANDLER that holds ``code``."""
    return next(number for number, line in enumerate(HANDLER.splitlines(), 1) if code in line)


def event(case: str) -> bytes:
    return json.dumps({"case": case}).encode()


def without_request_id(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    assert REQUEST_ID.fullmatch(document.pop("requestId"))
    return document  # type: ignore[no-any-return]


def test_results_are_the_same_bytes_as_the_managed_runtime_sends(both: Callable[..., Any]) -> None:
    answers = both([event(case) for case in RESULT_CASES])
    ours, theirs = answers["pylambda"][0], answers["awslambdaric"][0]
    for case, mine, official in zip(RESULT_CASES, ours, theirs, strict=True):
        assert mine == official, case
    # What the table of differences was about, spelt out:
    by_case = dict(zip(RESULT_CASES, ours, strict=True))
    assert by_case["decimal digits"] == b'{"d": 3.14159265358979323846264}'
    assert by_case["decimal exponent"] == b'{"l": [1E+2], "price": 19.90}'
    assert by_case["nested bytes"] == '{"b": "abc", "deep": [{"x": "été"}]}'.encode()
    assert by_case["namedtuple"] == b'{"x": 1, "y": "x"}'
    assert by_case["nan and infinity"] == b"[NaN, Infinity, -Infinity]"


def test_errors_are_the_same_documents_as_the_managed_runtime_sends(both: Callable[..., Any]) -> None:
    answers = both([event(case) for case in FAILING_CASES])
    ours, theirs = answers["pylambda"][0], answers["awslambdaric"][0]
    for case, mine, official in zip(FAILING_CASES, ours, theirs, strict=True):
        assert without_request_id(mine) == without_request_id(official), case
    divide = without_request_id(ours[0])
    assert divide["errorType"] == "ZeroDivisionError"
    assert not any("^" in line for line in divide["stackTrace"])  # no 3.11+ caret lines
    assert without_request_id(ours[3])["errorMessage"] == (
        "Unable to marshal response: Object of type datetime is not JSON serializable"
    )


@pytest.mark.parametrize("log_format", ["text", "JSON"])
def test_a_failed_invoke_is_logged_as_the_managed_runtime_logs_it(log_format: str, both: Callable[..., Any]) -> None:
    answers = both([event("divide"), event("custom")], {"AWS_LAMBDA_LOG_FORMAT": log_format})
    ours, theirs = answers["pylambda"][1], answers["awslambdaric"][1]
    assert ours == theirs
    if log_format == "text":  # what metric filters written for the managed runtime look for
        assert ours.startswith("[ERROR] ZeroDivisionError: division by zero\rTraceback (most recent call last):\r")


@pytest.mark.parametrize("log_format", ["text", "JSON"])
def test_logging_records_are_written_as_the_managed_runtime_writes_them(
    log_format: str, both: Callable[..., Any]
) -> None:
    answers = both([event("log")], {"AWS_LAMBDA_LOG_FORMAT": log_format, "AWS_LAMBDA_LOG_LEVEL": "INFO"})
    ours, theirs = answers["pylambda"][1], answers["awslambdaric"][1]
    if log_format == "JSON":
        assert ours == theirs
        records = [json.loads(line) for line in ours.splitlines()]
        assert [record["level"] for record in records] == ["INFO", "WARNING", "WARNING", "INFO", "ERROR", "ERROR"]
        assert records[3]["order"] == 7
        assert records[4]["message"] == {"structured": True}
        assert records[5]["location"].endswith(f"app.py:handler:{line_of('logger.exception')}")
        assert list(records[5]) == [
            *("timestamp", "level", "message", "logger", "stackTrace", "errorType", "errorMessage"),
            *("requestId", "location"),
        ]
        return
    # Kept on purpose: one event per record. The official client writes a record's line breaks as they are
    # (and runs an exception record's last line into whatever comes next); pylambda writes them as \r.
    assert ours.replace("\r", "\n") == theirs.replace("KeyError: 'sku'", "KeyError: 'sku'\n")
    assert ours.count("\n") == 6  # six records, six events


@pytest.fixture
def telemetry(tmp_path: Path) -> Callable[[list[str]], Path]:
    """A program that hands the command it is given a telemetry descriptor, as Lambda would; its frames' file."""

    def wrap(command: list[str]) -> Path:
        script = tmp_path / f"with-telemetry-{len(list(tmp_path.glob('with-telemetry-*')))}"
        frames = script.with_suffix(".frames")
        quoted = " ".join(f"'{part}'" for part in command)
        script.write_text(f"#!/bin/sh\nexec 3>>'{frames}'\nexport _LAMBDA_TELEMETRY_LOG_FD=3\nexec {quoted}\n")
        script.chmod(0o755)
        return script

    return wrap


@pytest.mark.parametrize(
    ("log_format", "level"), [("text", None), ("text", "INFO"), ("JSON", "INFO")], ids=["text", "text+level", "JSON"]
)
def test_telemetry_frames_carry_the_same_types_and_messages(
    log_format: str,
    level: str | None,
    telemetry: Callable[[list[str]], Path],
    bootstrap: Path,
    bare_python_dir: Path,
    official_client: Path,
    task: Path,
) -> None:
    env = {**MANAGED_313, "AWS_LAMBDA_LOG_FORMAT": log_format, "PATH": f"{bare_python_dir}:/usr/bin:/bin"}
    if level:
        env["AWS_LAMBDA_LOG_LEVEL"] = level
    commands = {
        "pylambda": telemetry([str(bootstrap)]),
        "awslambdaric": telemetry([str(bare_python_dir / "python3"), "-m", "awslambdaric", "app.handler"]),
    }
    frames = {}
    for name, command in commands.items():
        extra = {"PYTHONPATH": str(official_client)} if name == "awslambdaric" else {}
        with Emulator(command, task, env={**env, **extra}) as em:
            em.invoke(event("log"))
            em.invoke(event("divide"))
            em.wait_for_output("END RequestId", timeout=5)
            time.sleep(0.2)
        frames[name] = [
            (kind, TIMESTAMP.sub("<time>", REQUEST_ID.sub("<id>", message)))
            for kind, _, message in read_frames(command.with_suffix(".frames").read_bytes())
        ]
    assert frames["pylambda"] == frames["awslambdaric"]
    # Six records (four at the default level, WARNING) and the failed invoke's report.
    assert len(frames["pylambda"]) == (7 if level else 5)


@pytest.fixture
def scripted(
    bootstrap: Path, bare_python_dir: Path, official_client: Path, task: Path
) -> Iterator[Callable[[str, list[dict[str, Any]]], ScriptedAPI]]:
    """Run one runtime against a scripted Runtime API until the script ends; the API, with what it was sent."""
    servers: list[ScriptedAPI] = []

    def run(runtime: str, script: list[dict[str, Any]]) -> ScriptedAPI:
        api = ScriptedAPI(list(script))
        servers.append(api)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        env = runtime_environment(api, bare_python_dir, task, **MANAGED_313)
        command = [str(bootstrap)]
        if runtime == "awslambdaric":
            command = [str(bare_python_dir / "python3"), "-m", "awslambdaric", "app.handler"]
            env["PYTHONPATH"] = str(official_client)
        subprocess.run(command, env=env, cwd=task, capture_output=True, timeout=30, check=False)
        return api

    yield run
    for api in servers:
        api.shutdown()
        api.server_close()


def test_the_invocation_id_goes_back_with_the_answer_and_the_xray_cause_with_an_error(
    scripted: Callable[[str, list[dict[str, Any]]], ScriptedAPI], task: Path
) -> None:
    script = [
        {"Lambda-Runtime-Invocation-Id": "inv-1", "body": event("tuples")},
        {"Lambda-Runtime-Invocation-Id": "inv-2", "body": event("custom")},
        {"body": event("set")},
        {"body": event("huge")},  # its cause is over a megabyte: no header
    ]
    sent = {runtime: scripted(runtime, script) for runtime in ("pylambda", "awslambdaric")}
    ours, theirs = sent["pylambda"], sent["awslambdaric"]
    cause = "lambda-runtime-function-xray-error-cause"
    assert [cause in h for h in ours.headers] == [cause in h for h in theirs.headers] == [False, True, True, False]
    assert ours.responses == theirs.responses
    name = "lambda-runtime-invocation-id"
    assert [h.get(name) for h in ours.headers] == [h.get(name) for h in theirs.headers]
    # Beyond it: the error type in its header too, as the Runtime API documents it.
    assert [h.get("lambda-runtime-function-error-type") for h in ours.headers] == [
        None,
        "OutOfStock",
        "Runtime.MarshalError",
        "ValueError",
    ]
    assert [h.get("lambda-runtime-invocation-id") for h in ours.headers] == ["inv-1", "inv-2", None, None]
    causes = {
        name: [json.loads(h.get("lambda-runtime-function-xray-error-cause", "null")) for h in api.headers]
        for name, api in sent.items()
    }
    for cause in (*causes["pylambda"], *causes["awslambdaric"]):
        if cause is not None:
            cause["paths"] = sorted(cause["paths"])  # a set's order in the official client
    assert causes["pylambda"] == causes["awslambdaric"]
    assert causes["pylambda"][1] == {
        "working_directory": str(task),
        "exceptions": [
            {
                "message": "sku 42 is out of stock",
                "type": "OutOfStock",
                "stack": [
                    {"label": "handler", "path": str(task / "app.py"), "line": line_of("return check_stock(42)")},
                    {"label": "check_stock", "path": str(task / "app.py"), "line": line_of('raise OutOfStock(f"sku')},
                ],
            }
        ],
        "paths": [str(task / "app.py")],
    }
    assert causes["pylambda"][2]["exceptions"][0]["type"] == "LambdaValidationError"


def test_w3c_trace_context_and_a_non_json_event_reach_the_handler_alike(
    scripted: Callable[[str, list[dict[str, Any]]], ScriptedAPI],
) -> None:
    client_context = {
        "custom": {"cart": "c-9"},
        "w3c": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "baggage": "a=1", "x": "no"},
    }
    script = [
        {"Lambda-Runtime-Client-Context": json.dumps(client_context), "body": event("w3c")},
        {"Content-Type": "text/plain", "body": b"a,b,c"},
    ]
    sent = {runtime: scripted(runtime, script) for runtime in ("pylambda", "awslambdaric")}
    assert sent["pylambda"].bodies == sent["awslambdaric"].bodies
    w3c, raw = (json.loads(body) for body in sent["pylambda"].bodies)
    assert w3c == {"traceparent": client_context["w3c"]["traceparent"], "baggage": "a=1"}
    assert raw == {"type": "bytes", "value": "a,b,c"}
