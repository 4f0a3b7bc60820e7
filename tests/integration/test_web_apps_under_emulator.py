"""Web apps as handlers under the real emulator: every caller's event shape, streaming, lifespan, failures.

The first tests use hand-written ASGI and WSGI apps with no dependencies, so
they run on Debian's CPython 3.13 to 3.15 too (./dev matrix). The examples
(functions/webapi: FastAPI, functions/flaskapp: Flask) run with their
dependency layers on this machine's Python, side by side with the same app
behind Mangum or apig-wsgi on awslambdaric, the way such apps run on the
managed runtime today.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pylambda_build import layers, readable_by_all
from pylambda_build.emulator import Emulator
from testkit import baseline
from tests.integration.test_streaming import ChunkRecordingAPI, stream_command
from tests.web_events import SHAPES, client_view, event

Start = Callable[..., Emulator]
PRELUDE_END = b"\0" * 8

APPS = r"""
import asyncio, json, os, time

STARTUP = os.environ.get("STARTUP", "ok")


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if STARTUP == "fail":
                    raise ConnectionError("the database is not there")
                scope["state"]["started_at"] = "init"
                await send({"type": "lifespan.startup.complete"})
            else:
                with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "shutdown.mark"), "w") as mark:
                    mark.write("shut down cleanly")
                await send({"type": "lifespan.shutdown.complete"})
                return
    request = await receive()
    if scope["path"] == "/boom":
        raise ValueError("the app failed")
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for n in range(3):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % n, "more_body": True})
            await asyncio.sleep(0.4)
        await send({"type": "http.response.body", "body": b""})
        return
    answer = {
        "method": scope["method"], "path": scope["path"], "query": scope["query_string"].decode(),
        "body": request["body"].decode("latin-1"), "state": scope["state"].get("started_at"),
        "cookie": dict(scope["headers"]).get(b"cookie", b"").decode(),
    }
    headers = [(b"content-type", b"application/json"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


def wsgi(environ, start_response):
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        def chunks():
            for n in range(3):
                yield b"chunk %d\n" % n
                time.sleep(0.4)
        return chunks()
    answer = {
        "method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"], "query": environ["QUERY_STRING"],
        "body": environ["wsgi.input"].read().decode("latin-1"), "state": None,
        "cookie": environ.get("HTTP_COOKIE", ""),
    }
    start_response("201 Created", [("Content-Type", "application/json"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    return [json.dumps(answer).encode()]
"""


@pytest.fixture
def apps(task_root: Callable[[dict[str, str]], Path]) -> Path:
    return task_root({"app.py": APPS})


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize("shape", SHAPES)
def test_an_app_answers_each_caller_in_its_own_shape(emulator: Start, apps: Path, kind: str, shape: str) -> None:
    with emulator(apps, handler=f"app.{kind}") as em:
        result = em.invoke(json.dumps(event(shape, "echo")))
    status, headers, body = client_view(shape, result.body)
    assert status == 201
    assert [value for name, value in headers if name == "set-cookie"] == ["a=1", "b=2"]
    answer = json.loads(body)
    assert (answer["method"], answer["path"]) == ("POST", "/echo")
    assert answer["body"] == "\x00\x01binary body\xff"  # a base64 body, decoded before the app sees it
    raw = shape in ("http-api", "function-url")  # 2.0 events carry the query string as the client sent it
    expected = ["a=1", "a=3", "b=two%20words" if raw else "b=two+words"]
    if shape == "alb":  # without multi-value fields, ALB sends one value per parameter: the last
        expected = expected[1:]
    assert sorted(answer["query"].split("&")) == expected
    assert answer["cookie"].replace(" ", "") == "session=abc;theme=dark"
    assert answer["state"] == ("init" if kind == "asgi" else None)  # the lifespan startup's state
    document = json.loads(result.body)
    if shape in ("http-api", "function-url"):
        assert document["cookies"] == ["a=1", "b=2"]
    elif shape == "alb-multi":
        assert document["multiValueHeaders"]["set-cookie"] == ["a=1", "b=2"]
        assert document["statusDescription"] == "201 Created"
    elif shape == "alb":  # one value per name: the second cookie under another spelling of the name
        assert (document["headers"]["set-cookie"], document["headers"]["Set-cookie"]) == ("a=1", "b=2")
    else:  # REST APIs take repeated headers in multiValueHeaders
        assert document["multiValueHeaders"] == {"set-cookie": ["a=1", "b=2"]}


def test_an_event_that_is_not_http_fails_that_invoke_and_the_next_is_served(emulator: Start, apps: Path) -> None:
    with emulator(apps, handler="app.asgi") as em:
        refused = em.invoke(json.dumps({"Records": [{"eventSource": "aws:sqs"}]})).json()
        served = em.invoke(json.dumps(event("http-api", "json")))
        logs = em.wait_for_output("Runtime.UnsupportedEvent", timeout=5)
    assert isinstance(refused, dict) and refused["errorType"] == "Runtime.UnsupportedEvent"
    assert "not one (it has Records)" in refused["errorMessage"]
    assert json.loads(served.body)["statusCode"] == 201
    assert "[ERROR] Runtime.UnsupportedEvent" in logs


def test_an_app_that_raises_answers_500_and_logs_the_failure(emulator: Start, apps: Path) -> None:
    with emulator(apps, handler="app.asgi") as em:
        result = em.invoke(json.dumps(event("function-url", "json") | {"rawPath": "/boom"})).json()
        logs = em.wait_for_output("[ERROR] ValueError", timeout=5)
    assert isinstance(result, dict)
    assert (result["statusCode"], result["body"]) == (500, "Internal Server Error")
    assert "[ERROR] ValueError: the app failed" in logs
    assert 'raise ValueError("the app failed")' in logs


def test_a_failed_lifespan_startup_fails_the_init(emulator: Start, apps: Path) -> None:
    with emulator(apps, handler="app.asgi", env={"STARTUP": "fail"}) as em:
        result = em.invoke(json.dumps(event("http-api", "json"))).json()
    assert isinstance(result, dict)
    assert (result["errorType"], result["errorMessage"]) == ("ConnectionError", "the database is not there")


def test_lifespan_shutdown_runs_when_lambda_stops_the_process(emulator: Start, apps: Path) -> None:
    with emulator(apps, handler="app.asgi") as em:
        assert json.loads(em.invoke(json.dumps(event("http-api", "json"))).body)["statusCode"] == 201
        pid = em.runtime_pid()
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not (apps / "shutdown.mark").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert (apps / "shutdown.mark").read_text() == "shut down cleanly"


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_a_streamed_answer_is_the_http_prelude_then_the_body(emulator: Start, apps: Path, kind: str) -> None:
    env = {"PYLAMBDA_INVOKE_MODE": "RESPONSE_STREAM"}
    with emulator(apps, handler=f"app.{kind}", env=env) as em:
        result = em.invoke(json.dumps(event("function-url", "json") | {"rawPath": "/stream"}))
    prelude, _, body = result.body.partition(PRELUDE_END)
    assert json.loads(prelude) == {"statusCode": 200, "headers": {"content-type": "text/plain"}}
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"


@pytest.fixture
def stream_app(apps: Path, runtime_python: tuple[Path | None, Path], bootstrap: Path) -> Iterator[Any]:
    """Run the layer against a Runtime API that times each chunk, serving one function URL event."""
    started: list[Any] = []

    def run(handler: str) -> ChunkRecordingAPI:
        api = ChunkRecordingAPI(event=json.dumps(event("function-url", "json") | {"rawPath": "/stream"}).encode())
        threading.Thread(target=api.serve_forever, daemon=True).start()
        process = stream_command(bootstrap, runtime_python, apps, api, handler, PYLAMBDA_INVOKE_MODE="RESPONSE_STREAM")
        started.append((api, process))
        assert api.done.wait(20), "the runtime never finished its stream"
        return api

    yield run
    for api, process in started:
        process.kill()
        process.wait()
        api.done.set()
        api.shutdown()
        api.server_close()


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_chunks_leave_the_runtime_as_the_app_sends_them(stream_app: Any, kind: str) -> None:
    api = stream_app(f"app.{kind}")
    chunks = [data for _, data in api.chunks]
    assert json.loads(chunks[0].removesuffix(PRELUDE_END))["statusCode"] == 200
    assert b"".join(chunks[1:]) == b"chunk 0\nchunk 1\nchunk 2\n"
    times = [at for at, data in api.chunks if data.startswith(b"chunk")]
    assert times[-1] - times[0] >= 0.7  # the first chunk arrived while the app was still sleeping


# --- the examples, beside the same app on the managed runtime's client ------------------------------


def example_opt(build_dir: Path, name: str, into: Path) -> Path:
    """The runtime layer and the example's dependency layer, unpacked together as Lambda does into /opt."""
    return layers.merge_layers([build_dir / "layer", build_dir / "deps" / name], into)


def example_task(build_dir: Path, name: str, into: Path) -> Path:
    with zipfile.ZipFile(build_dir / "functions" / f"{name}.zip") as archive:
        archive.extractall(into)
    return into


@pytest.fixture(scope="module")
def managed_way(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path, str, str], Path]:
    """A task root as a managed-runtime function ships the example: its code, its packages and the adapter."""
    client = baseline.packages(tmp_path_factory.mktemp("awslambdaric"))

    def lay_out(build_dir: Path, name: str, adapter: str) -> Path:
        root = tmp_path_factory.mktemp(f"managed-{name}")
        site = next((build_dir / "deps" / name / "python" / "lib").glob("python3.*/site-packages"))
        shutil.copytree(site, root, dirs_exist_ok=True)
        shutil.copytree(client, root, dirs_exist_ok=True)
        import importlib.util

        for module in ("mangum", "apig_wsgi"):
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin is not None
            shutil.copytree(Path(spec.origin).parent, root / module, dirs_exist_ok=True)
        example_task(build_dir, name, root)
        (root / "managed.py").write_text(adapter)
        readable_by_all(root)
        return root

    return lay_out


def masked(view: tuple[int, list[tuple[str, str]], bytes]) -> tuple[int, list[tuple[str, str]], Any]:
    """An answer without what differs from run to run: the request id in the body, and so its length."""
    status, headers, body = view
    try:
        document = json.loads(body)
    except ValueError:
        return status, headers, body
    if isinstance(document, dict):
        document.pop("request_id", None)
    return status, [(k, v) for k, v in headers if k != "content-length"], document


def side_by_side(
    bare_python_dir: Path, opt: Path, task: Path, managed: Path, requests: list[dict[str, Any]], shape: str
) -> tuple[list[Any], list[Any]]:
    ours = Emulator(opt / "bootstrap", task, "app.app", env={"PATH": f"{bare_python_dir}:{os.environ['PATH']}"})
    theirs = Emulator(
        bare_python_dir / "python3",
        managed,
        env={"PYTHONPATH": str(managed)},
        args=["-m", "awslambdaric", "managed.handler"],
    )
    answers: list[list[Any]] = []
    for em in (ours, theirs):
        with em:
            answers.append([masked(client_view(shape, em.invoke(json.dumps(request)).body)) for request in requests])
    return answers[0], answers[1]


def with_route(shape: str, method: str, path: str, body: str | None = None) -> dict[str, Any]:
    """The json request of web_events, sent to another route of the example."""
    document = event(shape, "json")
    if shape in ("http-api", "function-url"):
        document["rawPath"] = path
        document["rawQueryString"] = ""
        document["requestContext"]["http"].update(method=method, path=path)
    else:
        document.update(httpMethod=method, path=path, queryStringParameters=None, multiValueQueryStringParameters=None)
    if body is not None:
        document["body"] = body
        for key in ("headers", "multiValueHeaders"):
            if key in document and shape in ("http-api", "function-url"):
                document[key]["content-type"] = "application/json"
            elif document.get(key):
                document[key]["content-type"] = (
                    ["application/json"] if key == "multiValueHeaders" else "application/json"
                )
    return document


@pytest.mark.parametrize("shape", SHAPES)
def test_the_fastapi_example_answers_as_mangum_on_awslambdaric_does(
    build_dir: Path, bare_python_dir: Path, managed_way: Callable[[Path, str, str], Path], tmp_path: Path, shape: str
) -> None:
    adapter = "from mangum import Mangum\nfrom app import app\nhandler = Mangum(app)\n"
    requests = [
        with_route(shape, "GET", "/hello/ada"),
        with_route(shape, "POST", "/orders", json.dumps({"sku": "A-1", "quantity": 2})),
        with_route(shape, "POST", "/orders", json.dumps({"sku": "A-1", "quantity": "many"})),
        with_route(shape, "GET", "/nowhere"),
    ]
    ours, theirs = side_by_side(
        bare_python_dir,
        example_opt(build_dir, "webapi", tmp_path / "opt"),
        example_task(build_dir, "webapi", tmp_path / "task"),
        managed_way(build_dir, "webapi", adapter),
        requests,
        shape,
    )
    assert ours == theirs
    assert [status for status, _, _ in ours] == [200, 201, 422, 404]
    assert ours[0][2] == {"message": "Hello, ada!"}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_flask_example_answers_as_apig_wsgi_on_awslambdaric_does(
    build_dir: Path, bare_python_dir: Path, managed_way: Callable[[Path, str, str], Path], tmp_path: Path, shape: str
) -> None:
    adapter = "from apig_wsgi import make_lambda_handler\nfrom app import app\nhandler = make_lambda_handler(app)\n"
    requests = [
        with_route(shape, "POST", "/notes", json.dumps({"text": "first"})),
        with_route(shape, "GET", "/notes"),
        with_route(shape, "POST", "/notes", json.dumps({})),
    ]
    ours, theirs = side_by_side(
        bare_python_dir,
        example_opt(build_dir, "flaskapp", tmp_path / "opt"),
        example_task(build_dir, "flaskapp", tmp_path / "task"),
        managed_way(build_dir, "flaskapp", adapter),
        requests,
        shape,
    )
    assert ours == theirs
    assert [status for status, _, _ in ours] == [201, 200, 400]
    assert ("set-cookie", "last-note=1; Path=/") in ours[0][1]


def test_the_fastapi_example_streams_its_countdown(build_dir: Path, bare_python_dir: Path, tmp_path: Path) -> None:
    opt = example_opt(build_dir, "webapi", tmp_path / "opt")
    env = {"PATH": f"{bare_python_dir}:{os.environ['PATH']}", "PYLAMBDA_INVOKE_MODE": "RESPONSE_STREAM"}
    with Emulator(opt / "bootstrap", example_task(build_dir, "webapi", tmp_path / "task"), "app.app", env=env) as em:
        request = with_route("function-url", "GET", "/countdown")
        request["rawQueryString"] = "start=2&pause=0.1"
        result = em.invoke(json.dumps(request))
    prelude, _, body = result.body.partition(PRELUDE_END)
    assert json.loads(prelude)["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert body == b"2\n1\nliftoff\n"


def test_the_fastapi_examples_countdown_leaves_the_runtime_a_line_at_a_time(
    build_dir: Path, bare_python_dir: Path, tmp_path: Path
) -> None:
    """Against a Runtime API that times each chunk: the streamed endpoint's lines arrive as FastAPI yields them."""
    opt = example_opt(build_dir, "webapi", tmp_path / "opt")
    task = example_task(build_dir, "webapi", tmp_path / "task")
    request = with_route("function-url", "GET", "/countdown")
    request["rawQueryString"] = "start=2&pause=0.4"
    api = ChunkRecordingAPI(event=json.dumps(request).encode())
    threading.Thread(target=api.serve_forever, daemon=True).start()
    process = stream_command(
        opt / "bootstrap", (None, bare_python_dir), task, api, "app.app", PYLAMBDA_INVOKE_MODE="RESPONSE_STREAM"
    )
    try:
        assert api.done.wait(30), "the runtime never finished its stream"
    finally:
        process.kill()
        process.wait()
        api.shutdown()
        api.server_close()
    lines = [(at, data) for at, data in api.chunks if not data.endswith(PRELUDE_END)]
    assert [data for _, data in lines] == [b"2\n", b"1\n", b"liftoff\n"]
    assert lines[1][0] - lines[0][0] >= 0.3  # "2" left while the endpoint was still counting down
    assert api.request_headers["Content-Type"] == "application/vnd.awslambda.http-integration-response"


@pytest.mark.skipif(os.getuid() != 0, reason="the emulator's managed-instances mode needs a mount namespace (root)")
@pytest.mark.parametrize("mode", ["process", "thread"])
def test_an_asgi_app_serves_concurrent_requests_in_managed_instances(emulator: Start, apps: Path, mode: str) -> None:
    """Each worker runs the lifespan startup at its init; with threads, the worker's loop serves them all."""
    env = {"AWS_LAMBDA_CONCURRENCY_MODE": mode}

    def answered(em: Emulator) -> bytes:
        for _ in range(100):  # the emulator's Runtime.Unavailable: a worker still on its way to `next`
            result = em.invoke(json.dumps(event("http-api", "echo")))
            if b"Runtime.Unavailable" not in result.body:
                return result.body
            time.sleep(0.05)
        raise AssertionError("no slot free")

    with emulator(apps, handler="app.asgi", env=env, max_concurrency=4) as em:
        answered(em)  # the runtime is up
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: answered(em), range(4)))
    for result in results:
        status, _, body = client_view("http-api", result)
        assert status == 201
        assert json.loads(body)["state"] == "init"
