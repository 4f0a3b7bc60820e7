"""Unmodified handlers written with real libraries, under pylambda and under awslambdaric, in the same test.

The libraries (Powertools for AWS Lambda with its tracer extra, Mangum, FastAPI;
see ``library_root`` in conftest.py) are installed into the function's task root, as a user would ship them, not
into the layer. They bring their own urllib3 (through botocore), which must not
disturb the runtime's vendored copy. Each handler answers the same events under
both runtimes, and the answers must agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pylambda_build.emulator import Emulator
from testkit import baseline

Start = Callable[..., Emulator]

POWERTOOLS_APP = """
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

logger = Logger(service="orders")
tracer = Tracer(service="orders")
app = APIGatewayHttpResolver()


@app.get("/orders/<order_id>")
@tracer.capture_method
def get_order(order_id: str):
    logger.info("fetching order", extra={"order_id": order_id})
    return {"order_id": order_id, "status": "shipped"}


@app.post("/orders")
def create_order():
    return {"created": app.current_event.json_body}, 201


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    return app.resolve(event, context)
"""

MANGUM_APP = """
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

api = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@api.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@api.post("/items", status_code=201)
def create_item(item: Item):
    return {"created": item.model_dump()}


handler = Mangum(api, lifespan="off")
"""


def http_event(method: str, path: str, *, query: str = "", body: str | None = None, url: bool = False) -> str:
    """An API Gateway HTTP API (payload 2.0) event, or the Function URL variant of the same format."""
    domain = "abcdefg.lambda-url.us-east-1.on.aws" if url else "api123.execute-api.us-east-1.amazonaws.com"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": domain, "content-type": "application/json", "user-agent": "pytest"},
        "queryStringParameters": dict(p.split("=") for p in query.split("&")) if query else None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".", maxsplit=1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", maxsplit=1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "pytest",
            },
            "requestId": "req-http",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:18:00:00 +0000",
            "timeEpoch": 1795629600000,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return json.dumps(event)


@pytest.fixture(scope="session")
def library_root(library_root: Path) -> Path:
    """The libraries (tests/integration/conftest.py) with this module's two handlers beside them."""
    (library_root / "powertools_app.py").write_text(POWERTOOLS_APP)
    (library_root / "mangum_app.py").write_text(MANGUM_APP)
    return library_root


@pytest.fixture(scope="session")
def official_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return baseline.packages(tmp_path_factory.mktemp("awslambdaric"))


@pytest.fixture
def both(emulator: Start, bare_python_dir: Path, official_client: Path) -> Callable[..., dict[str, Any]]:
    """Run events through a handler under both runtimes; return each runtime's (status, body, logs) answers."""

    def run(root: Path, handler: str, events: list[str]) -> dict[str, Any]:
        env = {"POWERTOOLS_TRACE_DISABLED": "true", "AWS_LAMBDA_FUNCTION_NAME": "orders"}
        ric = Emulator(
            bare_python_dir / "python3",
            root,
            handler,
            env={**env, "PYTHONPATH": str(official_client)},
            args=["-m", "awslambdaric", handler],
        )
        answers = {}
        for name, emu in (("pylambda", emulator(root, handler=handler, env=env)), ("awslambdaric", ric)):
            with emu as em:
                results = [em.invoke(event) for event in events]
                logs = em.wait_for_output("REPORT RequestId", timeout=5)
            answers[name] = ([json.loads(r.body) for r in results], logs)
        return answers

    return run


def test_powertools_logger_tracer_and_http_resolver_answer_alike(
    both: Callable[..., dict[str, Any]], library_root: Path
) -> None:
    events = [
        http_event("GET", "/orders/42"),
        http_event("POST", "/orders", body='{"sku": "A-1", "quantity": 2}'),
        http_event("GET", "/nowhere"),
    ]
    answers = both(library_root, "powertools_app.handler", events)
    ours, _ = answers["pylambda"]
    theirs, _ = answers["awslambdaric"]
    assert [r["statusCode"] for r in ours] == [200, 201, 404]
    assert [json.loads(r["body"]) for r in ours] == [json.loads(r["body"]) for r in theirs]
    assert [r["statusCode"] for r in ours] == [r["statusCode"] for r in theirs]
    assert json.loads(ours[0]["body"]) == {"order_id": "42", "status": "shipped"}


def test_powertools_logger_sees_the_same_context_fields(
    both: Callable[..., dict[str, Any]], library_root: Path
) -> None:
    answers = both(library_root, "powertools_app.handler", [http_event("GET", "/orders/7")])
    records = {}
    for name, (_results, logs) in answers.items():
        [line] = [line for line in logs.splitlines() if '"fetching order"' in line]
        records[name] = json.loads(line[line.index("{") :])
    for record in records.values():
        assert record["order_id"] == "7"
        assert record["function_name"] == "orders"
        assert record["cold_start"] is True
        assert record["function_request_id"]
    keys = ("level", "message", "service", "function_name", "function_memory_size", "cold_start", "order_id")
    assert {k: records["pylambda"][k] for k in keys} == {k: records["awslambdaric"][k] for k in keys}


@pytest.mark.parametrize("function_url", [False, True], ids=["http-api-v2", "function-url"])
def test_mangum_fastapi_answer_alike(
    function_url: bool, both: Callable[..., dict[str, Any]], library_root: Path
) -> None:
    events = [
        http_event("GET", "/items/5", query="q=blue", url=function_url),
        http_event("POST", "/items", body='{"name": "lamp", "price": 12.5}', url=function_url),
        http_event("POST", "/items", body='{"name": "lamp"}', url=function_url),
    ]
    answers = both(library_root, "mangum_app.handler", events)
    ours, _ = answers["pylambda"]
    theirs, _ = answers["awslambdaric"]
    assert [r["statusCode"] for r in ours] == [200, 201, 422]
    assert json.loads(ours[0]["body"]) == {"item_id": 5, "q": "blue"}
    assert json.loads(ours[1]["body"]) == {"created": {"name": "lamp", "price": 12.5}}
    for mine, official in zip(ours, theirs, strict=True):
        assert mine["statusCode"] == official["statusCode"]
        assert json.loads(mine["body"]) == json.loads(official["body"])
        assert mine["headers"] == official["headers"]
