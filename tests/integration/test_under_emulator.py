"""The built layer's bootstrap under the real AWS Runtime Interface Emulator.

Every test here runs the runtime the way Lambda does: the emulator starts the
bootstrap, serves the Runtime API, and answers invokes. The interpreter found
on PATH has no urllib3, so the layer's vendored copy is the only one.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pylambda_build.emulator import Emulator, InvokeResult

Start = Callable[..., Emulator]
TaskRoot = Callable[[Mapping[str, str]], Path]
TEST_PYTHON = os.environ.get("PYLAMBDA_TEST_PYTHON") or None  # see conftest.py

PID_HANDLER = """
import os
calls = 0
def handler(event, context):
    global calls
    calls += 1
    return {"pid": os.getpid(), "calls": calls}
"""


def example(build_dir: Path, name: str, into: Path) -> Path:
    """Unpack a built example function zip as its task root."""
    with zipfile.ZipFile(build_dir / "functions" / f"{name}.zip") as archive:
        archive.extractall(into)
    return into


def body(result: InvokeResult) -> Any:
    return json.loads(result.body)


# --- the example functions --------------------------------------------------------------------------


def test_echo_returns_the_event_and_context_fields(emulator: Start, build_dir: Path, tmp_path: Path) -> None:
    root = example(build_dir, "echo", tmp_path)
    with emulator(root, env={"AWS_LAMBDA_FUNCTION_NAME": "echo-fn"}) as em:
        result = em.invoke('{"hello": "world", "n": [1, 2]}')
        logs = em.wait_for_output("REPORT RequestId")
    answer = body(result)
    assert result.status == 200
    assert answer["event"] == {"hello": "world", "n": [1, 2]}
    assert answer["function_name"] == "echo-fn"
    assert answer["function_arn"].endswith(":function:echo-fn")
    assert answer["memory_limit_in_mb"] == "3008"
    assert 0 < answer["remaining_time_in_millis"] <= 10_000
    request_id = answer["request_id"]
    assert f"\t{request_id}\techoing an event with 2 top-level keys" in logs
    assert f"request {request_id} for " in logs


def test_fail_reports_its_business_error_and_then_serves_a_good_invoke(
    emulator: Start, build_dir: Path, tmp_path: Path
) -> None:
    root = example(build_dir, "fail", tmp_path)
    with emulator(root) as em:
        failed = body(em.invoke('{"amount": 500}'))
        good = body(em.invoke('{"amount": 10}'))
        logs = em.wait_for_output("PaymentDeclined")
    assert failed["errorType"] == "PaymentDeclined"
    assert failed["errorMessage"] == "card declined for amount 500: limit is 100"
    assert failed["requestId"]
    assert any("in charge" in frame for frame in failed["stackTrace"])
    assert good == {"charged": 10}
    head = "[ERROR] PaymentDeclined: card declined for amount 500: limit is 100\rTraceback (most recent call last):\r"
    assert head in logs


def test_batch_stops_before_its_deadline(emulator: Start, build_dir: Path, tmp_path: Path) -> None:
    root = example(build_dir, "batch", tmp_path)
    event = {"items": list(range(40)), "seconds_per_item": 0.1, "safety_margin_ms": 500}
    with emulator(root, timeout=2) as em:
        answer = body(em.invoke(json.dumps(event)))
    assert answer["stopped_early"] is True
    assert answer["processed"] + answer["remaining"] == list(range(40))
    assert 0 < len(answer["processed"]) < 20
    assert answer["remaining_time_in_millis"] >= 400


def test_stream_example_counts_down_behind_its_http_prelude(emulator: Start, build_dir: Path, tmp_path: Path) -> None:
    root = example(build_dir, "stream", tmp_path)
    with emulator(root) as em:
        result = em.invoke('{"count": 2}')
    prelude, _, text = result.body.partition(b"\0" * 8)
    assert json.loads(prelude) == {"statusCode": 200, "headers": {"content-type": "text/plain; charset=utf-8"}}
    assert text == b"2...\n1...\nlift-off\n"


# --- the interpreter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_concurrency",
    [
        None,
        pytest.param(
            2, marks=pytest.mark.skipif(os.getuid() != 0, reason="managed-instances mode needs a mount namespace")
        ),
    ],
)
def test_the_runtime_runs_on_the_python_under_test(
    max_concurrency: int | None, emulator: Start, task_root: TaskRoot
) -> None:
    """This machine's Python, or with PYLAMBDA_TEST_PYTHON Debian's of that version: what every test here runs on."""
    source = """
    import os, sys
    def handler(event, context):
        return {"version": "%d.%d" % sys.version_info[:2], "executable": os.path.realpath(sys.executable)}
    """
    with emulator(task_root({"app.py": source}), max_concurrency=max_concurrency) as em:
        answer = body(em.invoke("{}"))
    if TEST_PYTHON is None:
        assert answer["version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    else:
        assert answer == {"version": TEST_PYTHON, "executable": f"/usr/bin/python{TEST_PYTHON}"}


# --- a handler the repository has never seen ----------------------------------------------------------


def test_one_process_serves_many_invokes_and_imports_the_module_once(emulator: Start, task_root: TaskRoot) -> None:
    with emulator(task_root({"app.py": PID_HANDLER})) as em:
        answers = [body(em.invoke("{}")) for _ in range(5)]
    assert {a["pid"] for a in answers} == {answers[0]["pid"]}
    assert [a["calls"] for a in answers] == [1, 2, 3, 4, 5]


def test_handler_runs_from_the_task_root_on_an_interpreter_without_urllib3(
    emulator: Start, task_root: TaskRoot
) -> None:
    source = """
    import importlib.util, os, sys
    def handler(event, context):
        return {"cwd": os.getcwd(), "path0": sys.path[0],
                "urllib3": importlib.util.find_spec("urllib3") is not None}
    """
    root = task_root({"app.py": source})
    with emulator(root) as em:
        answer = body(em.invoke("{}"))
    assert answer == {"cwd": str(root), "path0": str(root), "urllib3": False}


DISPATCH = """
import os
def handler(event, context):
    if event == {"ok": True}:
        return {"pid": os.getpid()}
    return failing(event, context)
"""


@pytest.mark.parametrize(
    ("failing", "event", "error_type", "message"),
    [
        ("def failing(e, c):\n    raise ValueError('no good')\n", "{}", "ValueError", "no good"),
        (
            "class OutOfStock(Exception):\n    pass\ndef failing(e, c):\n    raise OutOfStock('sku 42')\n",
            "{}",
            "OutOfStock",
            "sku 42",
        ),
        ("def failing(e, c):\n    return {1, 2}\n", "{}", "Runtime.MarshalError", "Unable to marshal response"),
        ("def failing(e, c):\n    return e\n", "{not json", "Runtime.UnmarshalError", "Unable to unmarshal input"),
        ("def failing(e, c):\n    return e\n", "\xff\xfe", "Runtime.UnmarshalError", "Unable to unmarshal input"),
        ("import sys\ndef failing(e, c):\n    sys.exit(3)\n", "{}", "SystemExit", "3"),
    ],
)
def test_invoke_errors_come_back_typed_and_the_same_process_serves_the_next(
    failing: str, event: str, error_type: str, message: str, emulator: Start, task_root: TaskRoot
) -> None:
    root = task_root({"app.py": failing + DISPATCH})
    with emulator(root) as em:
        before = body(em.invoke('{"ok": true}'))
        failed = em.invoke(event.encode("latin-1"))
        after = body(em.invoke('{"ok": true}'))
        logs = em.wait_for_output(error_type)
    error = body(failed)
    assert failed.status == 200
    assert error["errorType"] == error_type
    assert message in error["errorMessage"]
    assert error["requestId"]
    assert f"[ERROR] {error_type}: " in logs
    assert before["pid"] == after["pid"]


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"app.py": "import not_installed_anywhere\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'not_installed_anywhere'",
        ),
        ({}, "missing.handler", "Runtime.ImportModuleError", "Unable to import module 'missing'"),
        (
            {"app.py": "def handler(e, c)\n    return 1\n"},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app'",
        ),
        (
            {"app.py": "def other(e, c):\n    pass\n"},
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        ({"app.py": "handler = 42\n"}, "app.handler", "Runtime.HandlerNotFound", "not a function"),
        ({"app.py": "def handler(e, c):\n    pass\n"}, "app", "Runtime.MalformedHandlerName", "Bad handler 'app'"),
        ({"app.py": "def handler(e, c):\n    pass\n"}, "../app.handler", "Runtime.MalformedHandlerName", "Bad handler"),
        ({"app.py": "raise RuntimeError('config missing')\n"}, "app.handler", "RuntimeError", "config missing"),
    ],
)
def test_init_errors_are_reported_and_a_fixed_function_then_serves(
    files: dict[str, str], handler: str, error_type: str, message: str, emulator: Start, task_root: TaskRoot
) -> None:
    root = task_root(files)
    with emulator(root, handler=handler) as em:
        failed = em.invoke("{}")
        logs = em.wait_for_output("exit status 1")
        # The runtime exited; the emulator starts a fresh one for the next invoke.
        (root / "app.py").write_text(PID_HANDLER)
        fixed = em.invoke("{}") if handler == "app.handler" else None
    error = body(failed)
    assert failed.status == 502
    assert error["errorType"] == error_type
    assert message in error["errorMessage"]
    assert f"{error_type}: " in logs
    assert "Process runtime-1 exited: exit status 1" in logs
    if fixed is not None:
        assert fixed.status == 200
        assert body(fixed)["calls"] == 1


def test_init_error_at_import_names_the_file_and_line(emulator: Start, task_root: TaskRoot) -> None:
    root = task_root({"app.py": "import json\n\nSETTINGS = json.loads('{broken')\n"})
    with emulator(root) as em:
        error = body(em.invoke("{}"))
    assert error["errorType"] == "JSONDecodeError"
    assert f'File "{root / "app.py"}", line 3, in <module>' in "".join(error["stackTrace"])


# --- logs and headers ---------------------------------------------------------------------------------


def test_print_and_logging_reach_the_logs_with_the_request_id(emulator: Start, task_root: TaskRoot) -> None:
    source = """
    import logging
    logging.getLogger().setLevel(logging.INFO)
    def handler(event, context):
        print("printed", end="")
        logging.getLogger("orders").info("logged %s", event["n"])
        return context.aws_request_id
    """
    with emulator(task_root({"app.py": source})) as em:
        request_id = body(em.invoke('{"n": 7}'))
        logs = em.wait_for_output("logged 7")
    assert "printed" in logs
    assert "[INFO]\t" in logs
    assert f"\t{request_id}\tlogged 7" in logs


def test_json_log_format_under_the_emulator(emulator: Start, task_root: TaskRoot) -> None:
    source = """
    import logging
    def handler(event, context):
        logging.getLogger("orders").info("shipped", extra={"order_id": 7})
        logging.getLogger("orders").debug("hidden")
        return context.aws_request_id
    """
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    with emulator(task_root({"app.py": source}), env=env) as em:
        request_id = body(em.invoke("{}"))
        logs = em.wait_for_output('"shipped"')
    [line] = [line for line in logs.splitlines() if '"shipped"' in line]
    record = json.loads(line)
    assert record["level"] == "INFO"
    assert record["logger"] == "orders"
    assert record["requestId"] == request_id
    assert record["order_id"] == 7
    assert "hidden" not in logs


def test_client_context_and_tenant_id_reach_the_context(emulator: Start, task_root: TaskRoot) -> None:
    source = """
    def handler(event, context):
        cc = context.client_context
        return {"app": cc.client.app_title, "custom": cc.custom, "tenant": context.tenant_id}
    """
    client_context = {"client": {"app_title": "Shop"}, "custom": {"cart": "c-9"}, "env": {}}
    headers = {
        "X-Amz-Client-Context": base64.b64encode(json.dumps(client_context).encode()).decode(),
        "X-Amz-Tenant-Id": "tenant-42",
    }
    with emulator(task_root({"app.py": source})) as em:
        answer = body(em.invoke("{}", headers=headers))
    assert answer == {"app": "Shop", "custom": {"cart": "c-9"}, "tenant": "tenant-42"}
