"""The observability tools teams attach to their functions, as real clients: the packages from PyPI, unmodified.

Each tool is installed into the function's task root, as a user ships it (or
as its layer would put it on the path), and runs under the real emulator,
except the X-Ray SDK: the emulator forwards no trace id, so that test runs the
real bootstrap against a scripted Runtime API that sends one.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pylambda_build.emulator import Emulator
from tests.scripted_api import TRACE_ID, ScriptedAPI, runtime_environment

TOOLS = {
    "opentelemetry": ["opentelemetry-sdk==1.45.1", "opentelemetry-instrumentation-aws-lambda==0.66b1"],
    "datadog": ["datadog-lambda==8.130.0"],
    "sentry": ["sentry-sdk==2.75.0"],
    "xray": ["aws-xray-sdk==2.15.0"],
}


@pytest.fixture(scope="session")
def tool_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A task root per tool, with the tool installed in it (the four pip installs run at once)."""
    roots = {name: tmp_path_factory.mktemp(name) for name in TOOLS}

    def install(name: str) -> None:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*command, "--target", str(roots[name]), *TOOLS[name]], check=True, capture_output=True)

    with ThreadPoolExecutor(len(TOOLS)) as pool:
        list(pool.map(install, TOOLS))
    return roots


@pytest.fixture
def start(bootstrap: Path, bare_python_dir: Path) -> Any:
    """The emulator on the layer, with a python3 that has nothing installed first on PATH."""

    def run(root: Path, handler: str, env: dict[str, str] | None = None) -> Emulator:
        path = f"{bare_python_dir}{os.pathsep}{os.environ['PATH']}"
        return Emulator(bootstrap, root, handler, env={"PATH": path, **(env or {})})

    return run


def json_lines(logs: str) -> list[Any]:
    documents = []
    for line in logs.splitlines():
        if line.startswith("{"):
            try:
                documents.append(json.loads(line))
            except ValueError:
                continue
    return documents


# --- OpenTelemetry, through a wrapper script as its Lambda layer does it ----------------------------

OTEL_APP = """
def handler(event, context):
    return {"request_id": context.aws_request_id}
"""

# What the OpenTelemetry layer's wrapper module does, written for this test: set up a tracer
# provider (here one that prints each span as a line), instrument ORIG_HANDLER, and serve it.
OTEL_WRAPPER_MODULE = """
import os
from importlib import import_module

from opentelemetry import trace
from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=lambda span: span.to_json(None) + "\\n")))
trace.set_tracer_provider(provider)
AwsLambdaInstrumentor().instrument()

module, _, function = os.environ["ORIG_HANDLER"].rpartition(".")
lambda_handler = getattr(import_module(module), function)
"""

OTEL_WRAPPER_SCRIPT = """#!/bin/sh
export ORIG_HANDLER="$_HANDLER"
export _HANDLER="otel_wrapper.lambda_handler"
exec "$@"
"""


def test_opentelemetry_through_a_wrapper_script_traces_each_invoke_with_its_request_id(
    tool_roots: dict[str, Path], start: Any
) -> None:
    root = tool_roots["opentelemetry"]
    (root / "app.py").write_text(OTEL_APP)
    (root / "otel_wrapper.py").write_text(OTEL_WRAPPER_MODULE)
    wrapper = root / "otel-instrument"
    wrapper.write_text(OTEL_WRAPPER_SCRIPT)
    wrapper.chmod(0o755)
    with start(root, "app.handler", {"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)}) as em:
        answers = [em.invoke("{}").json() for _ in range(2)]
        logs = em.wait_for_output("END RequestId", timeout=5)
    spans = [document for document in json_lines(logs) if "context" in document and "attributes" in document]
    invocations = [span["attributes"].get("faas.invocation_id") for span in spans]
    assert invocations == [answer["request_id"] for answer in answers], logs  # type: ignore[index]
    assert all(span["kind"] == "SpanKind.SERVER" for span in spans)


# --- Datadog, through its handler redirection ------------------------------------------------------

DATADOG_APP = """
def handler(event, context):
    return {"request_id": context.aws_request_id}
"""


def test_datadog_handler_redirection_flushes_enhanced_metrics_and_spans_to_the_log(
    tool_roots: dict[str, Path], start: Any
) -> None:
    root = tool_roots["datadog"]
    (root / "app.py").write_text(DATADOG_APP)
    env = {
        "DD_LAMBDA_HANDLER": "app.handler",
        "DD_FLUSH_TO_LOG": "true",
        "DD_ENHANCED_METRICS": "true",
        "DD_TRACE_ENABLED": "true",
        "DD_API_KEY": "not-used-when-flushing-to-the-log",
    }
    with start(root, "datadog_lambda.handler.handler", env) as em:
        answer = em.invoke("{}").json()
        logs = em.wait_for_output('"traces"', timeout=10)
    documents = json_lines(logs)
    metrics = [document for document in documents if document.get("m") == "aws.lambda.enhanced.invocations"]
    assert len(metrics) == 1, logs
    spans = [span for document in documents for trace in document.get("traces", []) for span in trace]
    lambda_spans = [span for span in spans if span.get("name") == "aws.lambda"]
    assert [span["meta"]["request_id"] for span in lambda_spans] == [answer["request_id"]], logs  # type: ignore[index]


# --- Sentry, with its serverless_function decorator ------------------------------------------------

SENTRY_APP = """
import os
import sentry_sdk
from sentry_sdk.integrations.serverless import serverless_function

sentry_sdk.init(dsn=os.environ["SENTRY_DSN"])

@serverless_function
def handler(event, context):
    raise LookupError("order 7 is not in the warehouse")
"""


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        type(self).received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sentry_server() -> Iterator[tuple[int, list[bytes]]]:
    """A local HTTP server standing in for Sentry's ingestion endpoint: (its port, the bodies it received)."""
    received: list[bytes] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()


def test_sentry_serverless_function_reports_an_exception_to_its_dsn(
    tool_roots: dict[str, Path], start: Any, sentry_server: tuple[int, list[bytes]]
) -> None:
    port, received = sentry_server
    root = tool_roots["sentry"]
    (root / "app.py").write_text(SENTRY_APP)
    dsn = f"http://public@127.0.0.1:{port}/1"
    with start(root, "app.handler", {"SENTRY_DSN": dsn}) as em:
        answer = em.invoke("{}").json()
    assert answer["errorType"] == "LookupError"  # type: ignore[index]
    events = [json.loads(line) for body in received for line in body.splitlines() if b'"exception"' in line]
    [exception] = [value for event in events for value in event["exception"]["values"]]
    assert (exception["type"], exception["value"]) == ("LookupError", "order 7 is not in the warehouse")


# --- the AWS X-Ray SDK ------------------------------------------------------------------------------

XRAY_APP = """
import os
from aws_xray_sdk.core import xray_recorder

def handler(event, context):
    with xray_recorder.in_subsegment("charge") as subsegment:
        subsegment.put_annotation("order", 7)
    return {"trace_id": os.environ.get("_X_AMZN_TRACE_ID")}
"""


def test_xray_sdk_sends_a_subsegment_under_the_invokes_trace_id(
    tool_roots: dict[str, Path], bootstrap: Path, bare_python_dir: Path
) -> None:
    root = tool_roots["xray"]
    (root / "app.py").write_text(XRAY_APP)
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    api = ScriptedAPI(["traced"])  # then the runtime finds the API gone, and exits
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = runtime_environment(
        api, bare_python_dir, root, AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{daemon.getsockname()[1]}"
    )
    try:
        subprocess.run([str(bootstrap)], env=env, capture_output=True, timeout=30, check=False)
        datagram = daemon.recv(65536)
    finally:
        api.shutdown()
        daemon.close()
    header, _, document = datagram.partition(b"\n")
    assert json.loads(header) == {"format": "json", "version": 1}
    subsegment = json.loads(document)
    root_id = TRACE_ID.split(";")[0].removeprefix("Root=")
    parent_id = TRACE_ID.split(";")[1].removeprefix("Parent=")
    assert (subsegment["name"], subsegment["trace_id"], subsegment["parent_id"]) == ("charge", root_id, parent_id)
    assert subsegment["annotations"] == {"order": 7}
    assert json.loads(api.bodies[0]) == {"trace_id": TRACE_ID}
