"""HTTP requests as Lambda receives them, and answers in the shape each caller expects.

A web app served as the handler (see web_apps) never sees an event: it sees
the request the event describes. Four callers send HTTP requests as events,
in three shapes:

- ``2.0``: HTTP APIs (payload format 2.0) and function URLs: ``rawPath``,
  ``rawQueryString``, ``cookies`` apart from the headers;
- ``1.0``: REST APIs and HTTP APIs with payload format 1.0: ``httpMethod``,
  ``path``, query parameters as a dict, ``multiValueHeaders``;
- ``alb``: Application Load Balancers: the 1.0 fields, multi-value ones only
  when the target group enables them, query parameters still URL-encoded.

Each expects its answer in its own shape: 2.0 takes ``cookies`` beside the
headers; 1.0 takes repeated headers in ``multiValueHeaders``; ALB takes
``multiValueHeaders`` exactly when it sent them. Bodies that are not text go
base64-encoded. The choices match Mangum's, the adapter most apps run
behind today, so an app answers the same without it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, urlencode

from .errors import RuntimeFault

UNSUPPORTED_EVENT = "Runtime.UnsupportedEvent"

# Content types whose bodies go to API Gateway as text; any other body is
# base64, which API Gateway and ALB decode before the client sees it.
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/vnd.api+json",
    "application/vnd.oai.openapi",
)


# What the client gets when the app fails before it answers: the status line's own words, as plain text.
INTERNAL_ERROR = (500, [("content-type", "text/plain; charset=utf-8")], b"Internal Server Error")


class Request:
    """One HTTP request, read from the event that carried it."""

    __slots__ = (
        "body",
        "client",
        "headers",
        "method",
        "multi_value",
        "path",
        "query",
        "raw_path",
        "scheme",
        "server",
        "shape",
    )

    def __init__(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise _not_http(event)
        context = event.get("requestContext")
        context = context if isinstance(context, dict) else {}
        self.multi_value = "multiValueHeaders" in event  # ALB answers in the form it was asked in
        if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
            self.shape = "2.0"
            http = context["http"]
            self.method = str(http.get("method", "GET"))
            raw_path = str(event.get("rawPath") or http.get("path") or "/")
            self.query = str(event.get("rawQueryString") or "").encode()
            headers = [(name.lower(), value) for name, value in _items(event.get("headers"))]
            if event.get("cookies"):
                headers.append(("cookie", "; ".join(event["cookies"])))
            self.client = http.get("sourceIp")
        elif "httpMethod" in event:
            self.shape = "alb" if "elb" in context else "1.0"
            self.method = str(event["httpMethod"])
            # API Gateway hands the path decoded; ALB as the client sent it.
            path = str(event.get("path") or "/")
            raw_path = path if self.shape == "alb" else quote(path, safe="/%!$&'()*+,;=:@~")
            headers = _headers_1_0(event)
            self.query = _query_1_0(event, encoded=self.shape == "alb")
            self.client = (context.get("identity") or {}).get("sourceIp") if self.shape == "1.0" else None
        else:
            raise _not_http(event)
        self.raw_path = raw_path.encode("latin-1", "replace")
        self.path = unquote(raw_path)
        self.headers = headers
        first = {name: value for name, value in reversed(headers)}
        if self.client is None and "x-forwarded-for" in first:
            self.client = first["x-forwarded-for"].split(",")[0].strip()
        self.scheme = first.get("x-forwarded-proto", "https")
        host, _, port = first.get("host", "lambda").partition(":")
        port = port or first.get("x-forwarded-port", "")
        self.server = (host, int(port) if port.isdigit() else 443 if self.scheme == "https" else 80)
        body = event.get("body") or ""
        self.body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def answer(request: Request, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """The response document the caller of ``request`` turns into an HTTP answer."""
    if request.shape == "2.0":
        document: dict[str, Any] = {"statusCode": status, **prelude(headers, default_type=True)}
        single = document.get("headers", {})
    else:
        single, multiple = _split_repeated(headers)
        document = {"statusCode": status}
        if request.shape == "alb":
            document["statusDescription"] = _status_line(status)
            if request.multi_value:
                document["multiValueHeaders"] = _grouped(headers)
            else:  # one value per name: repeats go out under other spellings of the name, which ALB passes on
                document["headers"] = {**single, **_spelt_apart(multiple)}
        else:
            document["headers"] = single
            document["multiValueHeaders"] = multiple
    text, encoded = _body(body, single, headers)
    document["body"] = text
    document["isBase64Encoded"] = encoded
    return document


def prelude(headers: Iterable[tuple[str, str]], default_type: bool = False) -> dict[str, Any]:
    """Headers as function URLs and HTTP APIs take them: repeats joined by commas, ``Set-Cookie`` as ``cookies``."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name == "set-cookie":
            cookies.append(value)
        else:
            joined[name] = f"{joined[name]},{value}" if name in joined else value
    if default_type and "content-type" not in joined:  # what API Gateway assumes of a body without one
        joined["content-type"] = "application/json"
    shaped: dict[str, Any] = {}
    if joined:
        shaped["headers"] = joined
    if cookies:
        shaped["cookies"] = cookies
    return shaped


def streamed_internal_error() -> list[Any]:
    """INTERNAL_ERROR as a streamed answer: its prelude, then its body."""
    status, headers, body = INTERNAL_ERROR
    return [{"statusCode": status, **prelude(headers)}, body]


def _not_http(event: object) -> RuntimeFault:
    keys = ", ".join(sorted(map(str, event))[:6]) if isinstance(event, dict) else type(event).__name__
    return RuntimeFault(
        UNSUPPORTED_EVENT,
        "The handler is a web application, which takes HTTP requests from API Gateway, function URLs or an "
        f"Application Load Balancer; this event is not one (it has {keys or 'nothing'}). Send other events to "
        "a function with an ordinary handler",
    )


def _items(mapping: object) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in mapping.items()] if isinstance(mapping, Mapping) else []


def _headers_1_0(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping) and multi:
        return [(name.lower(), str(value)) for name, values in multi.items() for value in values or ()]
    return [(name.lower(), value) for name, value in _items(event.get("headers"))]


def _query_1_0(event: Mapping[str, Any], encoded: bool) -> bytes:
    params = event.get("multiValueQueryStringParameters") or event.get("queryStringParameters") or {}
    pairs = [
        (name, value) for name, values in params.items() for value in (values if isinstance(values, list) else [values])
    ]
    if encoded:  # ALB passes them on as the client sent them: decoded here, so both callers' are encoded alike
        pairs = [(unquote_plus(name), unquote_plus(value)) for name, value in pairs]
    return urlencode(pairs).encode()


def _split_repeated(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Names sent once, and the names sent more than once with all their values."""
    grouped = _grouped(headers)
    single = {name: values[0] for name, values in grouped.items() if len(values) == 1}
    return single, {name: values for name, values in grouped.items() if len(values) > 1}


def _grouped(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


def _spelt_apart(multiple: Mapping[str, list[str]]) -> dict[str, str]:
    """Each value of a repeated header under its own spelling of the name (set-cookie, Set-cookie, sEt-cookie...)."""
    spelt: dict[str, str] = {}
    for name, values in multiple.items():
        letters = [i for i, c in enumerate(name) if c.isalpha()]
        for n, value in enumerate(values[: 2 ** len(letters)]):
            chars = list(name)
            for bit, i in enumerate(letters):
                if n >> bit & 1:
                    chars[i] = chars[i].upper()
            spelt["".join(chars)] = value
    return spelt


def _body(body: bytes, single: Mapping[str, str], headers: Iterable[tuple[str, str]]) -> tuple[str, bool]:
    """The body as text when its type is text and it decodes, else base64."""
    if not body:
        return "", False
    content_type = single.get("content-type") or _grouped(headers).get("content-type", [""])[-1]
    if "content-encoding" not in single and any(kind in content_type for kind in TEXT_TYPES):
        try:
            return body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), True


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
