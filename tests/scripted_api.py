"""A scripted Runtime API, for what the emulator cannot produce: failures, and events with a trace id."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TRACE_ID = "Root=1-674b1f3a-5c0ffee0123456789abcdef0;Parent=53995c3f42cd8ad8;Sampled=1"


def runtime_environment(api: ScriptedAPI, python_dir: Path, task_root: Path, **extra: str) -> dict[str, str]:
    """What a runtime started against ``api`` needs: its address, ``app.handler`` in ``task_root``, the python3 of
    ``python_dir`` first on PATH; ``extra`` adds to it or overrides it."""
    return {
        "PATH": f"{python_dir}:/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": str(task_root),
        **extra,
    }


class ScriptedAPI(ThreadingHTTPServer):
    """Answers each `next` as the script says: 'event', 'traced' (an event with an X-Ray trace id), '500',
    'drop' (close without answering), 'evil' (an event whose request id tries to climb out of its URL path),
    or a dict: an event with these `next` header fields, and its "body" (bytes) if the dict has one.

    SnapStart's `restore/next` is answered at once (the restore happens as soon as it is asked for), and any
    GET under /mark/ too, so that code under test can leave marks in ``gets``, the order of every GET."""

    def __init__(self, script: list[str | dict[str, Any]]) -> None:
        self.script = list(script)
        self.gets: list[str] = []
        self.nexts: list[float] = []
        self.responses: list[str] = []
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []  # of each POST, by lower-case name
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedAPI

    def do_GET(self) -> None:
        self.server.gets.append(self.path)
        if self.path.startswith("/mark/") or self.path == "/2018-06-01/runtime/restore/next":
            self._send(200, b"", {})
            return
        self.server.nexts.append(time.monotonic())
        step = self.server.script.pop(0) if self.server.script else "drop"
        if isinstance(step, dict):
            fields = {k: v for k, v in step.items() if k != "body"}
            request_id = f"req-{len(self.server.nexts)}"
            fields = {"Lambda-Runtime-Aws-Request-Id": request_id, "Content-Type": "application/json", **fields}
            self._send(200, step.get("body", b'{"n": 1}'), fields)
            return
        if step == "drop":
            self.close_connection = True
            self.connection.close()
            return
        if step == "500":
            self._send(500, b'{"errorType": "ServiceException"}', {})
            return
        request_id = "../../init/error" if step == "evil" else f"req-{len(self.server.nexts)}"
        headers = {"Lambda-Runtime-Aws-Request-Id": request_id, "Lambda-Runtime-Deadline-Ms": "0"}
        if step == "traced":
            headers["Lambda-Runtime-Trace-Id"] = TRACE_ID
            headers["Lambda-Runtime-Deadline-Ms"] = str(int(time.time() * 1000) + 30_000)
        self._send(200, b'{"n": 1}', {**headers, "Content-Type": "application/json"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.responses.append(self.path)
        self.server.bodies.append(body)
        self.server.headers.append({name.lower(): value for name, value in self.headers.items()})
        self._send(202, b'{"status":"OK"}', {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass
