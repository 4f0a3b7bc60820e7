"""``pylambda watch DIR``: a function served on localhost as its function URL serves it, restarted on each change.

The function runs under the real emulator, as ``invoke`` runs it; in front of
it, an HTTP server turns each request into the event a function URL sends
(payload format 2.0) and the function's answer back into an HTTP response:
``curl localhost:8000/hello`` reaches a FastAPI or Flask app (or any handler
that answers HTTP events) as it would on Lambda. Other events go to the
emulator's own invoke path on the same port, as the Lambda API's Invoke does.

Every request first looks for changed files in DIR (the folder is also polled
in between): after a change the function is packaged again and the emulator
restarted, a changed requirements file rebuilding the dependency layer. A
request that comes in during a restart waits for the new process.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .emulator import INVOKE_PATH, Emulator, function_logs
from .layers import LayerSpec, package_function, rebuild_layer, with_dependencies

POLL_SECONDS = 0.5
PRELUDE_END = b"\0" * 8
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "+json", "+xml")
SKIPPED = {"__pycache__", "node_modules", ".pylambda", ".aws-sam", "build"}


class Watched:
    """The function as it is now: a packaged copy of DIR under the emulator, replaced when DIR changes."""

    def __init__(self, source: Path, handler: str, timeout: int, rebuild_opt: Callable[[], Path]) -> None:
        self.source, self.handler, self.timeout = source, handler, timeout
        self.rebuild_opt = rebuild_opt  # the runtime layer with the dependency layer over it, built afresh
        self.opt = rebuild_opt()
        self.lock = threading.Lock()  # one invoke or restart at a time: a request during a restart waits
        self.scratch = Path(tempfile.mkdtemp(prefix="pylambda-watch-"))
        self.emulator: Emulator | None = None
        self.seen: dict[Path, int] = {}
        self.logged = self.reports = 0
        self.generation = 0

    def start(self) -> None:
        with self.lock:
            self.seen = self.snapshot()
            self.restart()

    def stop(self) -> None:
        with self.lock:
            if self.emulator is not None:
                self.emulator.__exit__()
                self.emulator = None
        shutil.rmtree(self.scratch, ignore_errors=True)

    def snapshot(self) -> dict[Path, int]:
        """Every file of the function's folder (its requirements.txt too) with its modification time."""
        files: dict[Path, int] = {}
        for folder, subfolders, names in os.walk(self.source):
            subfolders[:] = [name for name in subfolders if name not in SKIPPED and not name.startswith(".")]
            for name in names:
                path = Path(folder, name)
                try:
                    files[path] = path.stat().st_mtime_ns
                except OSError:  # removed while we looked
                    continue
        return files

    def refresh(self) -> None:
        """Restart if anything changed since the last look (the caller holds the lock)."""
        now = self.snapshot()
        if now == self.seen:
            return
        changed = sorted(p for p in now.keys() | self.seen.keys() if now.get(p) != self.seen.get(p))
        names = ", ".join(str(p.relative_to(self.source)) for p in changed[:3]) + (" ..." if len(changed) > 3 else "")
        print(f"pylambda: {names} changed: restarting", file=sys.stderr)
        self.seen = now
        if any(p.name == "requirements.txt" for p in changed):
            self.opt = self.rebuild_opt()
        self.restart()

    def restart(self) -> None:
        if self.emulator is not None:
            self.emulator.__exit__()
        self.generation += 1
        task = self.scratch / f"task-{self.generation}"
        package_function(self.source, task)
        shutil.rmtree(self.scratch / f"task-{self.generation - 1}", ignore_errors=True)
        env = {"AWS_LAMBDA_FUNCTION_NAME": self.source.resolve().name}
        self.emulator = Emulator(self.opt / "bootstrap", task, self.handler, env=env, timeout=self.timeout)
        self.emulator.__enter__()
        self.logged = self.reports = 0

    def invoke(self, event: bytes) -> tuple[int, str, bytes]:
        """Send one event to the function as it is now: (status, content type, body) of the emulator's answer."""
        with self.lock:
            self.refresh()
            assert self.emulator is not None
            result = self.emulator.invoke(event, timeout=self.timeout + 10)
            logs, deadline = self.emulator.logs(), time.monotonic() + 2
            while logs.count("REPORT RequestId") <= self.reports and time.monotonic() < deadline:
                time.sleep(0.02)  # the emulator writes the invoke's last lines after it answers
                logs = self.emulator.logs()
            new, self.logged, self.reports = logs[self.logged :], len(logs), logs.count("REPORT RequestId")
        if new.strip():
            print(function_logs(new), file=sys.stderr)
        return result.status, result.headers.get("Content-Type", "application/json"), result.body

    def poll(self, stop: threading.Event) -> None:
        """Restart soon after a change even before a request comes, so that the next one is quick."""
        while not stop.wait(POLL_SECONDS):
            with self.lock:
                self.refresh()


class WatchServer(ThreadingHTTPServer):
    """The HTTP server in front of the watched function."""

    def __init__(self, watched: Watched, port: int) -> None:
        self.watched = watched
        self.port = port
        super().__init__(("127.0.0.1", port), _Handler)


def serve(watched: Watched, port: int, event: str | None) -> int:
    """Serve the function on ``port`` until interrupted."""
    server = WatchServer(watched, port)
    source = watched.source
    watched.start()
    stop = threading.Event()
    threading.Thread(target=watched.poll, args=(stop,), daemon=True).start()
    address = f"http://127.0.0.1:{port}"
    print(f"pylambda: serving {source} at {address}/ as a function URL would", file=sys.stderr)
    print(f"pylambda: other events: POST them to {address}{INVOKE_PATH}", file=sys.stderr)
    print(f"pylambda: watching {source} for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
    if event is not None:
        status, _, body = watched.invoke(event.encode())
        print(f"--- response (HTTP {status})", file=sys.stderr)
        sys.stdout.buffer.write(body + b"\n")
        sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.server_close()
        watched.stop()
    return 0


def request_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes, port: int) -> dict[str, Any]:
    """The event a function URL sends for this HTTP request (payload format 2.0)."""
    path, _, query = target.partition("?")
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    content_type = joined.get("content-type", "")
    text = any(kind in content_type for kind in TEXT_TYPES)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path or "/",
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": f"127.0.0.1:{port}",
            "domainPrefix": "127",
            "http": {
                "method": method,
                "path": path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": f"local-{int(now * 1000)}",
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": bool(body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = body.decode() if text else base64.b64encode(body).decode()
    return event


def http_answer(body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """What a function URL makes of the function's answer: (status, headers, body)."""
    head, separator, rest = body.partition(PRELUDE_END)
    if separator:  # a streamed answer with its HTTP prelude
        try:
            prelude = json.loads(head)
        except ValueError:
            prelude = None
        if isinstance(prelude, dict) and "statusCode" in prelude:
            return int(prelude["statusCode"]), _headers(prelude), rest
    try:
        document = json.loads(body)
    except ValueError:
        return 200, [("content-type", "application/octet-stream")], body
    if isinstance(document, dict) and {"errorType", "errorMessage"} <= document.keys():
        return 502, [("content-type", "application/json"), ("x-amzn-errortype", str(document["errorType"]))], body
    if isinstance(document, dict) and "statusCode" in document:
        content = document.get("body") or ""
        raw = base64.b64decode(content) if document.get("isBase64Encoded") else str(content).encode()
        return int(document["statusCode"]), _headers(document), raw
    return 200, [("content-type", "application/json")], body  # any other value: the JSON as the body


def _headers(document: dict[str, Any]) -> list[tuple[str, str]]:
    headers = [(str(k), str(v)) for k, v in (document.get("headers") or {}).items()]
    return headers + [("set-cookie", str(cookie)) for cookie in document.get("cookies") or []]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: WatchServer

    def _serve(self) -> None:
        watched = self.server.watched
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "POST" and self.path == INVOKE_PATH:  # an event as it is, as Lambda's Invoke takes it
            status, content_type, answer = watched.invoke(body)
            self._answer(status, [("content-type", content_type)], answer)
            return
        event = request_event(self.command, self.path, list(self.headers.items()), body, self.server.port)
        _, _, answer = watched.invoke(json.dumps(event).encode())
        self._answer(*http_answer(answer))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"pylambda: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")


def run(
    source: Path,
    out: Path,
    spec: LayerSpec,
    *,
    requirements: Path | None,
    handler: str,
    port: int,
    timeout: int,
    event: str | None,
) -> int:
    """Build the layer (and dependency layer) once, then serve and watch ``source``."""
    layer, name = out / "layer", source.resolve().name
    rebuild_layer(layer, spec)
    with tempfile.TemporaryDirectory(prefix="pylambda-watch-opt-") as scratch:

        def rebuild() -> Path:
            opt = Path(tempfile.mkdtemp(dir=scratch))
            return with_dependencies(layer, requirements, out / "deps" / name, spec, opt / "opt")

        return serve(Watched(source, handler, timeout, rebuild), port, event)
