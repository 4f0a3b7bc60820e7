"""What a team sees in production: one log event per record, wrapper scripts, the layer's python3 on PATH.

The emulator hands the runtime no telemetry descriptor, so the tests hand one
in the way Lambda's would arrive, through a wrapper script
(``AWS_LAMBDA_EXEC_WRAPPER``), and read the frames from the file behind it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from pylambda_build.emulator import Emulator, function_logs
from tests.frames import JSON_ERROR, JSON_WARNING, TEXT, TEXT_ERROR, read_frames

Start = Callable[..., Emulator]
TaskRoot = Callable[[Mapping[str, str]], Path]

HANDLER = """
import logging, os, shutil, sys

log = logging.getLogger("orders")

def handler(event, context):
    if event.get("fail"):
        log.warning("stock is low\\nfor two items")
        try:
            {}["sku"]
        except KeyError:
            log.exception("lookup failed")
        raise ValueError("card declined\\non the second line")
    return {
        "descriptor": os.environ.get("_LAMBDA_TELEMETRY_LOG_FD"),
        "from_wrapper": os.environ.get("FROM_WRAPPER"),
        "python3": shutil.which("python3"),
        "executable": sys.executable,
    }

def stream_ints(event, context):
    yield from range(3)
"""

# What a wrapper such as OpenTelemetry's does: set up the environment, then start the runtime.
TELEMETRY_WRAPPER = """#!/bin/sh
exec 3>>"$(dirname "$0")/telemetry.bin"
export _LAMBDA_TELEMETRY_LOG_FD=3
export FROM_WRAPPER=yes
exec "$@"
"""


def with_wrapper(task_root: TaskRoot, wrapper: str = TELEMETRY_WRAPPER) -> Path:
    root = task_root({"app.py": HANDLER, "wrapper.sh": wrapper})
    (root / "wrapper.sh").chmod(0o755)
    return root


@pytest.mark.parametrize(
    ("log_format", "types"), [("text", [TEXT, TEXT, TEXT_ERROR]), ("JSON", [JSON_WARNING, JSON_ERROR, JSON_ERROR])]
)
def test_with_a_telemetry_descriptor_a_multi_line_warning_an_exception_and_a_failure_are_one_frame_each(
    log_format: str, types: list[int], emulator: Start, task_root: TaskRoot
) -> None:
    root = with_wrapper(task_root)
    env = {"AWS_LAMBDA_EXEC_WRAPPER": str(root / "wrapper.sh"), "AWS_LAMBDA_LOG_FORMAT": log_format}
    with emulator(root, env=env) as em:
        seen = em.invoke("{}").json()
        failed = em.invoke('{"fail": true}').json()
        logs = function_logs(em.wait_for_output("END RequestId", timeout=5))
    assert seen["from_wrapper"] == "yes"  # the wrapper's exports reach the handler
    assert seen["descriptor"] is None  # the runtime took the variable out of the environment
    assert failed["errorType"] == "ValueError"  # type: ignore[index]
    frames = read_frames((root / "telemetry.bin").read_bytes())
    assert [kind for kind, _, _ in frames] == types
    warning, exception, report = (message for _, _, message in frames)
    assert (
        "stock is low\\nfor two items" in warning if log_format == "JSON" else "stock is low\nfor two items" in warning
    )
    assert "lookup failed" in exception and "KeyError" in exception
    assert "card declined" in report and "in handler" in report
    assert all(abs(timestamp / 1e6 - time.time()) < 60 for _, timestamp, _ in frames)
    for text in ("stock is low", "lookup failed", "card declined"):  # nothing of them on stdout
        assert text not in logs


def test_without_a_descriptor_each_record_and_report_is_one_stdout_line(emulator: Start, task_root: TaskRoot) -> None:
    with emulator(task_root({"app.py": HANDLER})) as em:
        em.invoke('{"fail": true}')
        logs = em.wait_for_output("END RequestId")
    lines = logs.split("\n")
    [warning] = [line for line in lines if "stock is low" in line]
    [exception] = [line for line in lines if "lookup failed" in line]
    [report] = [line for line in lines if "card declined" in line]
    assert warning.endswith("stock is low\rfor two items")
    assert "\rTraceback (most recent call last):\r" in exception and "KeyError: 'sku'" in exception
    assert "\rTraceback (most recent call last):\r" in report and "on the second line" in report


@pytest.mark.parametrize("problem", ["missing", "not executable"])
def test_a_wrapper_that_cannot_run_fails_the_init_at_once_naming_it(
    problem: str, emulator: Start, task_root: TaskRoot
) -> None:
    root = task_root({"app.py": HANDLER})
    wrapper = root / "wrapper.sh"
    if problem == "not executable":
        wrapper.write_text(TELEMETRY_WRAPPER)
    with emulator(root, env={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)}) as em:
        started = time.monotonic()
        answer = em.invoke("{}").json()
        took = time.monotonic() - started
    assert took < 2
    assert answer["errorType"] == "Runtime.InvalidEntrypoint"  # type: ignore[index]
    reason = "does not exist" if problem == "missing" else "is not an executable file"
    assert (
        answer["errorMessage"]
        == f"AWS_LAMBDA_EXEC_WRAPPER names {wrapper}, which {reason}; the function's init fails without it"
    )  # type: ignore[index]


def test_python3_on_path_is_the_layers_interpreter_for_the_handler_and_a_wrapper(
    bundled_build_dir: Path, task_root: TaskRoot
) -> None:
    wrapper = '#!/bin/sh\nexport FROM_WRAPPER="$(command -v python3)"\nexec "$@"\n'
    root = with_wrapper(task_root, wrapper)
    bootstrap = bundled_build_dir / "layer" / "bootstrap"
    env = {"AWS_LAMBDA_EXEC_WRAPPER": str(root / "wrapper.sh"), "PATH": "/usr/bin:/bin"}
    with Emulator(bootstrap, root, env=env) as em:
        seen = em.invoke("{}").json()
    interpreter = next((bundled_build_dir / "layer" / "pylambda").glob("python3.*/bin"))
    assert seen["python3"] == str(interpreter / "python3")  # type: ignore[index]
    assert seen["from_wrapper"] == str(interpreter / "python3")  # type: ignore[index]
    assert os.path.realpath(seen["executable"]).startswith(str(interpreter.parent))  # type: ignore[index]


def test_a_layer_without_an_interpreter_leaves_path_alone(emulator: Start, task_root: TaskRoot) -> None:
    with emulator(task_root({"app.py": HANDLER})) as em:
        seen = em.invoke("{}").json()
        path = em.environ["PATH"]
    assert seen["python3"] == os.path.join(path.split(os.pathsep)[0], "python3")  # type: ignore[index]


def test_a_streamed_result_whose_first_item_cannot_be_sent_is_an_error_not_an_empty_answer(
    emulator: Start, task_root: TaskRoot
) -> None:
    with emulator(task_root({"app.py": HANDLER}), "app.stream_ints") as em:
        answer = em.invoke("{}")
        after = em.invoke("{}")
    assert json.loads(answer.body) == {
        "errorMessage": "Unable to marshal response: a streaming handler yields bytes or str, not int",
        "errorType": "Runtime.MarshalError",
        "requestId": json.loads(answer.body)["requestId"],
        "stackTrace": [],
    }
    assert json.loads(after.body)["errorType"] == "Runtime.MarshalError"  # and the runtime serves on


# An external extension, as a layer ships one in extensions/: it registers for
# INVOKE and SHUTDOWN through the Extensions API and records what it is sent.
EXTENSION = """#!/usr/bin/env python3
import json, os, urllib.request

api = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension"
register = urllib.request.Request(
    f"{api}/register", data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
    headers={"Lambda-Extension-Name": "recorder"}, method="POST")
with urllib.request.urlopen(register) as answer:
    identifier = answer.headers["Lambda-Extension-Identifier"]
while True:
    request = urllib.request.Request(f"{api}/event/next", headers={"Lambda-Extension-Identifier": identifier})
    with urllib.request.urlopen(request) as answer:
        event = json.load(answer)
    with open(os.environ["RECORD_TO"], "a") as record:
        record.write(f"{event['eventType']} {event.get('requestId', event.get('shutdownReason'))}\\n")
    if event["eventType"] == "SHUTDOWN":
        break
"""

SHUTDOWN_HOOK = """
import atexit, os
atexit.register(lambda: os.write(1, b"the user's atexit hook ran\\n"))

def handler(event, context):
    return {"request_id": context.aws_request_id}
"""


@pytest.mark.skipif(os.getuid() != 0, reason="mounting the layer at /opt needs a mount namespace (root)")
def test_an_external_extension_in_the_layer_runs_beside_the_runtime_and_both_shut_down_cleanly(
    build_dir: Path, bare_python_dir: Path, task_root: TaskRoot, tmp_path: Path
) -> None:
    layer = tmp_path / "layer"
    shutil.copytree(build_dir / "layer", layer, symlinks=True)
    (layer / "extensions").mkdir()
    (layer / "extensions" / "recorder").write_text(EXTENSION)
    (layer / "extensions" / "recorder").chmod(0o755)
    record = tmp_path / "events.txt"
    env = {"PATH": f"{bare_python_dir}:/usr/bin:/bin", "RECORD_TO": str(record)}
    em = Emulator(layer / "bootstrap", task_root({"app.py": SHUTDOWN_HOOK}), env=env, layer_at_opt=True)
    with em:
        answers = [em.invoke("{}").json() for _ in range(2)]
        assert em._process is not None
        em._process.terminate()  # as Lambda ends an environment: SHUTDOWN to extensions, SIGTERM to the runtime
        em._process.wait(timeout=10)
        logs = em.logs()
    request_ids = [answer["request_id"] for answer in answers]  # type: ignore[index]
    events = record.read_text().splitlines()
    assert events[:2] == [f"INVOKE {request_id}" for request_id in request_ids]
    assert events[2].startswith("SHUTDOWN")
    assert "the user's atexit hook ran" in logs
