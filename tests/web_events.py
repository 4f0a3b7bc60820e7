"""HTTP events as each caller sends them, and answers as the HTTP client ends up seeing them.

``event(shape, ...)`` writes one request in the shape API Gateway (REST: 1.0;
HTTP API: 2.0), a function URL (2.0, with its own domain) or an Application
Load Balancer (with or without multi-value headers) sends it.
``client_view(shape, answer)`` is what the caller makes of a response document:
status, headers (names in lower case, repeats as separate entries, cookies as
Set-Cookie) and body bytes, so answers written differently but meaning the same
compare equal, and answers that lose a header or a byte do not.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

SHAPES = ("rest", "http-api", "function-url", "alb", "alb-multi")

# One request of each kind the tests send: (method, path, query pairs, headers, cookies, body bytes, base64).
REQUESTS: dict[str, tuple[str, str, list[tuple[str, str]], list[tuple[str, str]], list[str], bytes]] = {
    "json": ("GET", "/hello", [("name", "lambda user")], [("accept", "application/json")], [], b""),
    "path-param": ("GET", "/items/a b", [], [], [], b""),
    "text": ("GET", "/text", [], [], [], b""),
    "binary": ("GET", "/binary", [], [], [], b""),
    "cookies-out": ("GET", "/cookies", [], [], [], b""),
    "echo": (
        "POST",
        "/echo",
        [("a", "1"), ("b", "two words"), ("a", "3")],
        [("content-type", "application/octet-stream"), ("x-multi-in", "x")],
        ["session=abc", "theme=dark"],
        b"\x00\x01binary body\xff",
    ),
    "echo-text": ("PUT", "/echo", [], [("content-type", "application/json")], [], b'{"k": "v\xc3\xbc"}'),
    "not-found": ("GET", "/nowhere", [], [], [], b""),
    "error": ("GET", "/boom", [], [], [], b""),
}


def event(shape: str, name: str) -> dict[str, Any]:
    """The request ``name`` of REQUESTS as the caller ``shape`` sends it."""
    method, path, query, headers, cookies, body = REQUESTS[name]
    headers = [("host", "example.com"), ("x-forwarded-proto", "https"), ("x-forwarded-port", "443"), *headers]
    encoded = b"\x00" in body or b"\xff" in body
    text = base64.b64encode(body).decode() if encoded else body.decode()
    if shape in ("http-api", "function-url"):
        domain = (
            "abc.lambda-url.us-east-1.on.aws" if shape == "function-url" else "abc.execute-api.us-east-1.amazonaws.com"
        )
        joined: dict[str, str] = {}
        for key, value in headers:
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        document: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": quote(path),
            "rawQueryString": "&".join(f"{k}={quote(v)}" for k, v in query),
            "headers": joined,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc",
                "domainName": domain,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
                "requestId": "r1",
                "routeKey": "$default",
                "stage": "$default",
                "timeEpoch": 1700000000000,
            },
            "body": text or None,
            "isBase64Encoded": encoded,
        }
        if cookies:
            document["cookies"] = cookies
        return document
    headers = [*headers, *([("cookie", "; ".join(cookies))] if cookies else [])]
    document = {"httpMethod": method, "path": path, "body": text or None, "isBase64Encoded": encoded}
    if shape == "rest":
        document.update(
            resource="/{proxy+}",
            headers=dict(headers),
            multiValueHeaders={k: [v for key, v in headers if key == k] for k, _ in headers},
            queryStringParameters=dict(query) or None,
            multiValueQueryStringParameters={k: [v for key, v in query if key == k] for k, _ in query} or None,
            requestContext={"resourcePath": "/{proxy+}", "stage": "prod", "identity": {"sourceIp": "203.0.113.7"}},
        )
    elif shape == "alb":
        document.update(
            headers=dict(headers),
            queryStringParameters={k: quote(v) for k, v in query},
            requestContext={"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/t/1"}},
        )
    elif shape == "alb-multi":
        document.update(
            multiValueHeaders={k: [v for key, v in headers if key == k] for k, _ in headers},
            multiValueQueryStringParameters={k: [quote(v) for key, v in query if key == k] for k, _ in query},
            requestContext={"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/t/1"}},
        )
    else:
        raise ValueError(shape)
    return document


def client_view(shape: str, answer: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """What the HTTP client receives for ``answer`` from the caller ``shape``."""
    if isinstance(answer, (bytes, str)):
        answer = json.loads(answer)
    headers: list[tuple[str, str]] = []
    if shape in ("http-api", "function-url"):
        headers = [(k.lower(), v) for k, v in (answer.get("headers") or {}).items()]
        headers += [("set-cookie", cookie) for cookie in answer.get("cookies") or []]
    else:
        merged: dict[str, list[str]] = {}
        for key, value in (answer.get("headers") or {}).items():
            merged.setdefault(key.lower(), []).append(value)
        for key, values in (answer.get("multiValueHeaders") or {}).items():  # API Gateway: these win
            merged[key.lower()] = list(values)
        headers = [(key, value) for key, values in merged.items() for value in values]
    body = answer.get("body") or ""
    raw = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
    return answer["statusCode"], sorted(headers), raw
