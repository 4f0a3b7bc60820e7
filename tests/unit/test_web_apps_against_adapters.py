"""Web apps as handlers: what is detected, and answers compared with Mangum's (ASGI) and apig-wsgi's (WSGI).

The same app objects, the same events, side by side in one run: our answer and
the reference adapter's must mean the same to the HTTP client (web_events.client_view).
Where they differ on purpose (docs/web-apps.md), the test says how.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "web_apps"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apig_wsgi import make_lambda_handler
from mangum import Mangum
from pylambda import event_loop, logs, streaming, web_apps
from pylambda.errors import RuntimeFault
from web_events import REQUESTS, SHAPES, client_view, event

APPS = ("fastapi_app", "starlette_app", "flask_app", "django_app")


class Context:
    aws_request_id = "request-1"


@pytest.fixture
def reported(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The error reports the runtime logs, as a failed invoke's are logged."""
    errors: list[dict[str, Any]] = []
    monkeypatch.setattr(logs, "report_error", errors.append)
    return errors


def call(handler: Any, document: Any) -> Any:
    """Call the handler as the runtime does: awaited when it gives a coroutine."""
    result = handler(document, Context())
    return event_loop.run(result) if event_loop.is_awaitable(result) else result


@functools.cache
def ours(module: str) -> Any:
    return web_apps.serve(importlib.import_module(module).app, f"{module}.app", {})


@functools.cache
def reference(module: str) -> Any:
    app = importlib.import_module(module).app
    if web_apps.detect(app) == "asgi":
        return Mangum(app)
    return make_lambda_handler(app, binary_support=True)


@pytest.mark.parametrize("module", APPS)
def test_frameworks_apps_are_detected_by_what_they_take(module: str) -> None:
    expected = "wsgi" if module in ("flask_app", "django_app") else "asgi"
    assert web_apps.detect(importlib.import_module(module).app) == expected


def test_ordinary_handlers_stay_handlers() -> None:
    def handler(event: Any, context: Any) -> None: ...

    async def async_handler(event: Any, context: Any) -> None: ...

    def decorated(function: Any) -> Any:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        return wrapper

    class Callable:
        def __call__(self, event: Any, context: Any) -> None: ...

    for candidate in (handler, async_handler, decorated(handler), Callable(), Mangum(lambda s, r, w: None), print):
        assert web_apps.detect(candidate) == "handler"
        assert web_apps.serve(candidate, "app.handler", {}) is candidate


def test_a_plain_function_of_environ_and_start_response_is_wsgi() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    assert web_apps.detect(app) == "wsgi"
    assert call(web_apps.serve(app, "app.app", {}), event("http-api", "json"))["statusCode"] == 204


def test_the_setting_decides_where_detection_cannot_tell() -> None:
    async def app(*args: Any) -> None:
        _scope, _receive, send = args
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    assert web_apps.detect(app) == "handler"
    handler = web_apps.serve(app, "app.app", {"PYLAMBDA_HANDLER_KIND": "asgi"})
    assert call(handler, event("http-api", "json"))["statusCode"] == 202


@pytest.mark.parametrize(
    ("kind", "module", "complaint"),
    [
        ("asgi", "flask_app", "is a callable of 2 positional arguments, not an ASGI app"),
        ("wsgi", "fastapi_app", "is an async callable of 3 positional arguments, not an WSGI app"),
        ("lambda", "flask_app", "'lambda' is not one of auto, handler, asgi, wsgi"),
    ],
)
def test_a_setting_that_contradicts_the_app_fails_the_init(kind: str, module: str, complaint: str) -> None:
    with pytest.raises(RuntimeFault) as caught:
        web_apps.serve(importlib.import_module(module).app, "m.app", {"PYLAMBDA_HANDLER_KIND": kind})
    assert caught.value.error_type == "Runtime.InvalidHandlerKind"
    assert complaint in caught.value.message


def test_an_invoke_mode_that_is_none_fails_the_init() -> None:
    with pytest.raises(RuntimeFault) as caught:
        web_apps.serve(importlib.import_module("flask_app").app, "m.app", {"PYLAMBDA_INVOKE_MODE": "STREAMING"})
    assert caught.value.error_type == "Runtime.InvalidInvokeMode"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", REQUESTS)
@pytest.mark.parametrize("module", ["fastapi_app", "starlette_app"])
def test_asgi_answers_match_mangums(module: str, shape: str, name: str, reported: list[Any]) -> None:
    assert client_view(shape, call(ours(module), event(shape, name))) == client_view(
        shape, reference(module)(event(shape, name), Context())
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", REQUESTS)
@pytest.mark.parametrize("module", ["flask_app", "django_app"])
def test_wsgi_answers_match_apig_wsgis(module: str, shape: str, name: str, reported: list[Any]) -> None:
    status, headers, body = client_view(shape, call(ours(module), event(shape, name)))
    their_status, their_headers, their_body = client_view(shape, reference(module)(event(shape, name), Context()))
    assert (status, body) == (their_status, their_body)
    if name == "echo" and shape in ("http-api", "function-url"):
        # apig-wsgi joins a 2.0 event's cookies with ';', we with '; ' as RFC 6265 writes them
        their_headers = [(k, v.replace(";", "; ") if k == "x-cookie" else v) for k, v in their_headers]
    if shape.startswith("alb"):
        # ALB sends query parameters still encoded: apig-wsgi hands them on as they are, we (as Mangum) re-encode
        # them; the app reads the same parameters either way
        headers = [(k, repr(parse_qsl(v)) if k == "x-query" else v) for k, v in headers]
        their_headers = [(k, repr(parse_qsl(v)) if k == "x-query" else v) for k, v in their_headers]
    if name == "cookies-out" and shape in ("http-api", "function-url", "alb"):
        # apig-wsgi keeps one value of a repeated header there; we keep each (our answer is the app's in full)
        assert {h for h in their_headers if h[0] != "x-multi"} <= {h for h in headers if h[0] != "x-multi"}
        assert [v.split(";")[0].strip() for k, v in headers if k == "set-cookie"] == ["first=1", "second=2"]
        if module == "flask_app":
            assert ",".join(v for k, v in headers if k == "x-multi") == "a,b"
        return
    assert headers == their_headers


def test_a_2_0_answer_without_a_content_type_says_json_as_mangum_does() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[1]"})

    answer = call(web_apps.serve(app, "app.app", {}), event("http-api", "json"))
    assert answer == call(Mangum(app, lifespan="off"), event("http-api", "json"))
    assert answer["headers"] == {"content-type": "application/json"}


@pytest.mark.parametrize("module", APPS)
def test_an_event_that_is_not_http_is_refused_with_what_it_is(module: str) -> None:
    sqs = {"Records": [{"eventSource": "aws:sqs", "body": "hello"}]}
    with pytest.raises(RuntimeFault) as caught:
        call(ours(module), sqs)
    assert caught.value.error_type == "Runtime.UnsupportedEvent"
    assert "not one (it has Records)" in caught.value.message
    assert "API Gateway, function URLs or an Application Load Balancer" in caught.value.message


def test_an_asgi_app_that_raises_answers_500_and_the_failure_is_logged(reported: list[dict[str, Any]]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise ValueError("database is down")

    answer = call(web_apps.serve(app, "app.app", {}), event("function-url", "json"))
    assert client_view("function-url", answer) == client_view(
        "function-url", call(Mangum(app, lifespan="off"), event("function-url", "json"))
    )
    assert answer["statusCode"] == 500 and answer["body"] == "Internal Server Error"
    assert [(error["errorType"], error["errorMessage"], error["requestId"]) for error in reported] == [
        ("ValueError", "database is down", "request-1")
    ]
    assert any("database is down" in line or "raise ValueError" in line for line in reported[0]["stackTrace"])


def test_a_wsgi_app_that_raises_answers_500_and_the_failure_is_logged(reported: list[dict[str, Any]]) -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        raise KeyError("missing")

    answer = call(web_apps.serve(app, "app.app", {}), event("rest", "json"))
    assert (answer["statusCode"], answer["body"]) == (500, "Internal Server Error")
    assert [error["errorType"] for error in reported] == ["KeyError"]


def test_lifespan_startup_runs_once_at_init_and_its_state_reaches_each_request() -> None:
    fastapi_app = importlib.import_module("fastapi_app")
    fastapi_app.started.clear()
    handler = web_apps.serve(fastapi_app.app, "fastapi_app.app", {})
    assert fastapi_app.started == ["once"]  # before any event
    for _ in range(3):
        assert json.loads(call(handler, event("rest", "json"))["body"])["hello"] == "lambda user"
    assert json.loads(call(handler, event("http-api", "json") | {"rawPath": "/startups"})["body"]) == {"startups": 1}
    starlette = web_apps.serve(importlib.import_module("starlette_app").app, "starlette_app.app", {})
    assert json.loads(call(starlette, event("alb", "json"))["body"])["state"] == "hello"


def test_a_failed_lifespan_startup_raises_the_apps_own_error() -> None:
    from starlette.applications import Starlette

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        raise ConnectionError("no database")
        yield  # pragma: no cover

    with pytest.raises(ConnectionError, match="no database"):
        web_apps.serve(Starlette(lifespan=lifespan), "app.app", {})


def test_a_startup_failure_without_an_exception_is_reported_with_its_message() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "config missing"})

    with pytest.raises(RuntimeFault) as caught:
        web_apps.serve(app, "app.app", {})
    assert caught.value.error_type == "Runtime.LifespanStartupFailed"
    assert "config missing" in caught.value.message


def test_an_app_without_lifespan_support_starts_as_it_is() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "lifespan is not supported"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    assert call(web_apps.serve(app, "app.app", {}), event("alb", "json"))["body"] == "ok"


def test_lifespan_shutdown_runs_when_the_process_ends() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            events.append(message["type"])
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    handler = web_apps.serve(app, "app.app", {})
    handler.lifespan.stop()  # what atexit calls
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def streamed(handler: Any, document: Any) -> list[Any]:
    result = handler(document, Context())
    assert streaming.is_stream(result)
    items = event_loop.iterate(result) if hasattr(result, "__anext__") else result
    return list(items)


@pytest.mark.parametrize("module", ["fastapi_app", "flask_app"])
def test_streamed_answers_are_a_prelude_then_the_body_as_the_app_sends_it(module: str) -> None:
    app = importlib.import_module(module).app
    handler = web_apps.serve(app, f"{module}.app", {"PYLAMBDA_INVOKE_MODE": "RESPONSE_STREAM"})
    items = streamed(handler, event("function-url", "json") | {"rawPath": "/stream"})
    assert items[0]["statusCode"] == 200
    assert items[0]["headers"]["content-type"].startswith("text/plain")
    assert [bytes(chunk) for chunk in items[1:]] == [b"chunk 0\n", b"chunk 1\n", b"chunk 2\n"]
    cookies = streamed(handler, event("function-url", "cookies-out"))
    assert [cookie.split(";")[0] for cookie in cookies[0]["cookies"]] == ["first=1", "second=2"]


def test_a_streamed_asgi_app_that_fails_before_answering_streams_a_500(reported: list[Any]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise ValueError("early")

    handler = web_apps.serve(app, "app.app", {"PYLAMBDA_INVOKE_MODE": "response_stream"})
    items = streamed(handler, event("function-url", "json"))
    assert items == [
        {"statusCode": 500, "headers": {"content-type": "text/plain; charset=utf-8"}},
        b"Internal Server Error",
    ]
    assert [error["errorType"] for error in reported] == ["ValueError"]


def test_a_streamed_asgi_app_that_fails_half_way_raises_for_the_error_trailers() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            raise ValueError("half-way")

    handler = web_apps.serve(app, "app.app", {"PYLAMBDA_INVOKE_MODE": "RESPONSE_STREAM"})
    items: Iterator[Any] = event_loop.iterate(handler(event("function-url", "json"), Context()))
    assert next(items) == {"statusCode": 200}
    assert next(items) == b"part"
    with pytest.raises(ValueError, match="half-way"):
        next(items)


def test_a_uvicorn_style_handler_name_is_understood() -> None:
    from pylambda.handler_loader import parse_handler_name

    assert parse_handler_name("main:app") == ("main", "app")
    assert parse_handler_name("api/main:app") == ("api.main", "app")


def test_receive_waits_for_the_answer_before_saying_the_client_left() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append((await receive())["type"])
        waiter = asyncio.ensure_future(receive())
        await asyncio.sleep(0)
        seen.append("waiting" if not waiter.done() else "early")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        seen.append((await waiter)["type"])

    call(web_apps.serve(app, "app.app", {}), event("http-api", "json"))
    assert seen == ["http.request", "waiting", "http.disconnect"]
