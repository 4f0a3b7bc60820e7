"""Response streaming: generator handlers, the HTTP prelude, and failures half-way.

Under the real emulator (which buffers a stream and hands the invoker the
whole body) the bytes and the prelude arrive intact; in its managed-instances
mode the invoker also gets the runtime's content type and the streaming mode
header. That chunks leave before the handler ends, and that a failure
half-way becomes the error trailers, is observed against a small Runtime API
of our own that timestamps each chunk as it arrives.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pylambda_build.emulator import Emulator
from testkit import sid_root

Start = Callable[..., Emulator]
TaskRoot = Callable[[Mapping[str, str]], Path]

STREAMING = """
import asyncio, time

def http(event, context):
    yield {"statusCode": 201, "headers": {"content-type": "text/plain"}, "cookies": ["a=1"]}
    yield "hello, "
    yield b"world"

def raw(event, context):
    for index in range(3):
        yield f"line {index}\\n"

async def from_async(event, context):
    for index in range(3):
        await asyncio.sleep(0.01)
        yield f"async {index};"

def slow(event, context):
    yield "first"
    time.sleep(0.5)
    yield "second"

def broken(event, context):
    yield "part one"
    raise ValueError("the source went away")

def fails_at_once(event, context):
    raise ValueError("before any byte")
    yield "never"

def plain(event, context):
    return {"plain": True}
"""
PRELUDE = b'{"statusCode": 201, "headers": {"content-type": "text/plain"}, "cookies": ["a=1"]}' + b"\0" * 8


@pytest.fixture
def streaming_root(task_root: TaskRoot) -> Path:
    return task_root({"app.py": STREAMING})


def test_http_stream_arrives_whole_with_its_prelude(emulator: Start, streaming_root: Path) -> None:
    with emulator(streaming_root, handler="app.http") as em:
        first = em.invoke("{}")
        second = em.invoke("{}")
    assert first.body == PRELUDE + b"hello, world"
    assert second.body == first.body


@pytest.mark.parametrize(
    ("handler", "body"),
    [("app.raw", b"line 0\nline 1\nline 2\n"), ("app.from_async", b"async 0;async 1;async 2;")],
)
def test_sync_and_async_generators_stream_their_items(
    handler: str, body: bytes, emulator: Start, streaming_root: Path
) -> None:
    with emulator(streaming_root, handler=handler) as em:
        assert [em.invoke("{}").body for _ in range(2)] == [body, body]


def test_failure_half_way_is_logged_and_the_next_invoke_is_served(emulator: Start, streaming_root: Path) -> None:
    with emulator(streaming_root, handler="app.broken") as em:
        first = em.invoke("{}")
        second = em.invoke("{}")
        logs = em.wait_for_output("the source went away")
    # The emulator in plain mode hides the trailers; what was sent before the failure arrives.
    assert first.body == second.body == b"part one"
    assert "ValueError: the source went away" in logs


def test_failure_before_any_byte_is_an_ordinary_error(emulator: Start, streaming_root: Path) -> None:
    with emulator(streaming_root, handler="app.fails_at_once") as em:
        error = json.loads(em.invoke("{}").body)
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "before any byte")


def test_plain_handlers_are_not_streamed(emulator: Start, streaming_root: Path) -> None:
    with emulator(streaming_root, handler="app.plain") as em:
        assert json.loads(em.invoke("{}").body) == {"plain": True}


@pytest.mark.skipif(os.getuid() != 0, reason="managed-instances mode needs a private mount namespace (root)")
def test_managed_instances_mode_returns_the_content_type_and_streaming_mode(
    emulator: Start, streaming_root: Path
) -> None:
    with emulator(streaming_root, "app.http", max_concurrency=2) as em:
        result = em.invoke("{}", headers={"invoke-response-mode": "streaming"})
    assert result.headers["Content-Type"] == "application/vnd.awslambda.http-integration-response"
    assert result.headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    assert result.body == PRELUDE + b"hello, world"


# --- against a Runtime API of our own, which sees each chunk as it comes ------------------------------


class ChunkRecordingAPI(ThreadingHTTPServer):
    """Serves one event, then records the streamed response chunk by chunk, with arrival times."""

    def __init__(self, event: bytes = b"{}") -> None:
        self.event = event
        self.served = False
        self.chunks: list[tuple[float, bytes]] = []
        self.request_headers: dict[str, str] = {}
        self.trailers: dict[str, str] = {}
        self.done = threading.Event()
        super().__init__(("127.0.0.1", 0), _RecordingHandler)


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChunkRecordingAPI

    def do_GET(self) -> None:
        if self.server.served:  # no second event: hold the runtime until the test ends
            self.server.done.wait(30)
            self.close_connection = True
            return
        self.server.served = True
        body = self.server.event
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "req-stream")
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.server.request_headers = dict(self.headers)
        while True:  # read the chunked body by hand, timing each chunk
            size = int(self.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                break
            self.server.chunks.append((time.monotonic(), self.rfile.read(size)))
            self.rfile.readline()
        while line := self.rfile.readline().strip():  # trailers, up to the blank line
            name, _, value = line.decode().partition(":")
            self.server.trailers[name.strip()] = value.strip()
        body = b'{"status":"OK"}'
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.done.set()

    def log_message(self, *args: Any) -> None:
        pass


def stream_command(
    bootstrap: Path,
    runtime_python: tuple[Path | None, Path],
    task_root: Path,
    api: ChunkRecordingAPI,
    handler: str,
    **env: str,
) -> subprocess.Popen[bytes]:
    """Start the bootstrap against ``api``, on the Python under test (in the sid root if asked)."""
    root, python_dir = runtime_python
    command = [str(bootstrap)]
    if root is not None:  # same network: the root shares only the mount namespace's privacy
        command = [*sid_root.enter(root, [bootstrap.parent, task_root, python_dir]), *command]
    environ = {
        "PATH": f"{python_dir}:/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        **env,
    }
    return subprocess.Popen(command, env=environ, cwd=task_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture
def stream_against(bootstrap: Path, runtime_python: tuple[Path | None, Path], streaming_root: Path) -> Iterator[Any]:
    """Run the bootstrap against a ChunkRecordingAPI, on the Python under test (in the sid root if asked)."""
    processes: list[subprocess.Popen[bytes]] = []
    servers: list[ChunkRecordingAPI] = []

    def run(handler: str) -> ChunkRecordingAPI:
        api = ChunkRecordingAPI()
        servers.append(api)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        processes.append(stream_command(bootstrap, runtime_python, streaming_root, api, handler))
        assert api.done.wait(20), "the runtime never finished its stream"
        return api

    yield run
    for process in processes:
        process.kill()
        process.wait()
    for api in servers:
        api.done.set()
        api.shutdown()
        api.server_close()


def test_chunks_leave_the_runtime_before_the_handler_ends(stream_against: Any) -> None:
    api = stream_against("app.slow")
    assert [data for _, data in api.chunks] == [b"first", b"second"]
    (first_at, _), (second_at, _) = api.chunks
    assert second_at - first_at >= 0.4  # "first" arrived while the handler was still sleeping
    assert api.request_headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    assert api.request_headers["Transfer-Encoding"] == "chunked"
    assert api.trailers == {}


def test_failure_half_way_becomes_the_error_trailers(stream_against: Any) -> None:
    api = stream_against("app.broken")
    assert [data for _, data in api.chunks] == [b"part one"]
    assert api.trailers["Lambda-Runtime-Function-Error-Type"] == "ValueError"
    error = json.loads(base64.b64decode(api.trailers["Lambda-Runtime-Function-Error-Body"]))
    assert error["errorMessage"] == "the source went away"
    assert error["requestId"] == "req-stream"
    assert any("in broken" in frame for frame in error["stackTrace"])


def test_http_stream_declares_the_http_integration_content_type(stream_against: Any) -> None:
    api = stream_against("app.http")
    assert api.request_headers["Content-Type"] == "application/vnd.awslambda.http-integration-response"
    assert b"".join(data for _, data in api.chunks) == PRELUDE + b"hello, world"
