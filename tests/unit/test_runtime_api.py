"""The Runtime API client against a small fake server, for what the emulator cannot show."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from pylambda.runtime_api import RuntimeAPIClient, RuntimeAPIError


class FakeRuntimeAPI(HTTPServer):
    """Answers `next` with a canned event and records every request and connection."""

    def __init__(self, keep_alive: bool = True, status: int = 200) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.connections: set[tuple[str, int]] = set()
        self.status = status
        self.keep_alive = keep_alive
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeRuntimeAPI

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        self.server.connections.add(self.client_address)
        payload = b'{"order": 1}' if self.path.endswith("/next") else b'{"status":"OK"}'
        self.send_response(self.server.status if self.command == "GET" else 202)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5e1b4151-5ac6c58f5b5dbd6a1c7c7c7c")
        if not self.server.keep_alive:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeRuntimeAPI]:
    fake = FakeRuntimeAPI(**getattr(request, "param", {}))
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


def test_next_returns_request_id_body_and_headers(server: FakeRuntimeAPI) -> None:
    invocation = RuntimeAPIClient(server.address).next_invocation()
    assert invocation.request_id == "req-1"
    assert invocation.body == b'{"order": 1}'
    assert invocation.headers["lambda-runtime-trace-id"] == "Root=1-5e1b4151-5ac6c58f5b5dbd6a1c7c7c7c"
    assert server.requests[0][:2] == ("GET", "/2018-06-01/runtime/invocation/next")


def test_response_is_posted_with_its_content_type(server: FakeRuntimeAPI) -> None:
    RuntimeAPIClient(server.address).post_response("req-1", b'{"ok": true}', "application/json")
    method, path, headers, body = server.requests[0]
    assert (method, path, body) == ("POST", "/2018-06-01/runtime/invocation/req-1/response", b'{"ok": true}')
    assert headers["Content-Type"] == "application/json"


def test_error_is_posted_with_the_error_type_header(server: FakeRuntimeAPI) -> None:
    error = {"errorMessage": "m", "errorType": "Ünïcode.Error", "requestId": "req-1", "stackTrace": []}
    RuntimeAPIClient(server.address).post_error("req-1", error)  # type: ignore[arg-type]
    _, path, headers, body = server.requests[0]
    assert path == "/2018-06-01/runtime/invocation/req-1/error"
    assert headers["Lambda-Runtime-Function-Error-Type"] == "?n?code.Error"
    assert json.loads(body) == error


def test_init_error_goes_to_its_own_path(server: FakeRuntimeAPI) -> None:
    error = {"errorMessage": "m", "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}
    RuntimeAPIClient(server.address).post_init_error(error)  # type: ignore[arg-type]
    assert server.requests[0][1] == "/2018-06-01/runtime/init/error"
    assert server.requests[0][2]["Lambda-Runtime-Function-Error-Type"] == "Runtime.ImportModuleError"


def test_one_connection_serves_many_calls_when_the_server_keeps_it_open(server: FakeRuntimeAPI) -> None:
    client = RuntimeAPIClient(server.address)
    for _ in range(5):
        client.next_invocation()
        client.post_response("req-1", b"{}", "application/json")
    assert len(server.requests) == 10
    assert len(server.connections) == 1


@pytest.mark.parametrize("server", [{"keep_alive": False}], indirect=True)
def test_reconnects_when_the_server_closes_each_connection(server: FakeRuntimeAPI) -> None:
    client = RuntimeAPIClient(server.address)
    for _ in range(3):
        client.next_invocation()
    assert len(server.connections) == 3


@pytest.mark.parametrize("server", [{"status": 500}], indirect=True)
def test_server_error_is_a_runtime_api_error(server: FakeRuntimeAPI) -> None:
    with pytest.raises(RuntimeAPIError, match="answered 500"):
        RuntimeAPIClient(server.address).next_invocation()


def test_unreachable_api_is_a_runtime_api_error() -> None:
    with HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        address = f"127.0.0.1:{probe.server_address[1]}"
    with pytest.raises(RuntimeAPIError, match="failed"):
        RuntimeAPIClient(address).next_invocation()
