"""The runtime's HTTP/1.1 base reads what the standard http.client reads, and refuses malformed answers clearly.

``pylambda.http11`` replaces ``http.client`` under the vendored urllib3. Each
well-formed answer here is read by both, and they must agree on status, fields
and body; each malformed one must raise an ``HTTPException`` (which the
Runtime API client turns into one line), never hang or return half an answer.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator

import pytest
from pylambda import http11
from pylambda.runtime_api import RuntimeAPIClient, RuntimeAPIError, _quote

from tests.http_answers import read_answer

WELL_FORMED = {
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "runtime api next": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Lambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\r\n"
        b"Lambda-Runtime-Deadline-Ms: 1542409706888\r\n"
        b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:custom-runtime\r\n"
        b"Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1\r\n"
        b"Date: Mon, 30 Nov 2026 10:00:00 GMT\r\nContent-Length: 17\r\n\r\n"
        b'{"hello":"world"}'
    ),
    "accepted, empty": b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"status":"OK"}\n',
    "no reason phrase": b"HTTP/1.1 204\r\n\r\n",
    "repeated field": b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n",
    "folded field": b"HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\nContent-Length: 1\r\n\r\nx",
    "interim 100 first": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "chunked with trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n",
    "body to the end": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the socket closes",
    "http/1.0": b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold",
    "bare newlines": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "latin-1 value": b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 0\r\n\r\n",
}

MALFORMED = {
    "nothing at all": (b"", http11.RemoteDisconnected),
    "not http": (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", http11.BadStatusLine),
    "four-digit status": (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", http11.BadStatusLine),
    "http/2 status line": (b"HTTP/2 200\r\n\r\n", http11.BadStatusLine),
    "field without a colon": (b"HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\nok", http11.BadHeaderLine),
    "space before the colon": (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", http11.BadHeaderLine),
    "too many fields": (b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", http11.BadHeaderLine),
    "overlong status line": (b"HTTP/1.1 200 " + b"O" * 70000 + b"\r\n\r\n", http11.LineTooLong),
    "overlong field": (b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n", http11.LineTooLong),
    "length not a number": (b"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok", http11.BadHeaderLine),
    "negative length": (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http11.BadHeaderLine),
    "body shorter than its length": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http11.IncompleteRead),
    "chunk size not hex": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http11.IncompleteRead),
    "chunk cut short": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc", http11.IncompleteRead),
    "head cut short": (b"HTTP/1.1 200 OK\r\nContent-Len", http11.BadHeaderLine),
}


@contextlib.contextmanager
def peer_answering(*answers: bytes) -> Iterator[tuple[int, list[bytes]]]:
    """A server that takes one connection and answers each request it reads, in turn, with the next of ``answers``.

    Yields its port and the requests received (one ``recv`` each), complete once the block ends.
    """
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        peer, _ = server.accept()
        for answer in answers:
            received.append(peer.recv(65536))
            peer.sendall(answer)
        peer.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        thread.join()
        server.close()


@pytest.mark.parametrize("name", WELL_FORMED)
def test_a_well_formed_answer_reads_as_http_client_reads_it(name: str) -> None:
    ours = read_answer(http11, WELL_FORMED[name])
    stdlib = read_answer(http.client, WELL_FORMED[name])
    if name == "folded field":  # http.client keeps the fold's line break in the value; a field is one line
        stdlib = (*stdlib[:2], [(k, " ".join(v.split())) for k, v in stdlib[2]], stdlib[3])
    assert ours == stdlib


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_answer_raises_an_http_exception(name: str) -> None:
    data, error = MALFORMED[name]
    with pytest.raises(error):
        read_answer(http11, data)
    assert issubclass(error, http11.HTTPException)


def test_header_lookups_ignore_case_and_keep_every_value() -> None:
    fields = read_answer(http11, WELL_FORMED["repeated field"])[2]
    message = http11.HTTPMessage(fields)
    assert message.get("SET-COOKIE") == "a=1"
    assert message.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert message.get("missing", "default") == "default"
    assert "content-length" in message and "missing" not in message


def test_a_connection_frames_a_request_as_http_client_does() -> None:
    """Request line, Host, Accept-Encoding, Content-Length and body, as one write when the body is bytes."""
    with peer_answering(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n") as (port, received):
        connection = http11.HTTPConnection("127.0.0.1", port)
        connection.request("POST", "/path", b'{"a": 1}', {"Content-Type": "application/json"})
        assert connection.getresponse().status == 202
        connection.close()
    assert received == [
        f"POST /path HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: identity\r\n".encode()
        + b'Content-Length: 8\r\nContent-Type: application/json\r\n\r\n{"a": 1}'
    ]


@pytest.mark.parametrize("bad", ["GET /a b", "GET\r\n/", ""])
def test_a_request_line_with_control_characters_or_spaces_is_refused(bad: str) -> None:
    method, _, url = bad.partition(" ")
    with pytest.raises(ValueError):
        http11.HTTPConnection("127.0.0.1", 9).putrequest(method or "GET", url)


def test_a_header_value_that_would_split_the_head_is_refused() -> None:
    connection = http11.HTTPConnection("127.0.0.1", 9)
    connection.putrequest("GET", "/")
    with pytest.raises(ValueError):
        connection.putheader("X-Injected", "a\r\nHost: elsewhere")


@pytest.mark.parametrize("name", ["X Space", "X:Colon", "X\r\nHost", "X\tTab", ""])
def test_a_header_name_with_a_separator_or_line_break_is_refused(name: str) -> None:
    connection = http11.HTTPConnection("127.0.0.1", 9)
    connection.putrequest("GET", "/")
    with pytest.raises(ValueError, match="invalid header name"):
        connection.putheader(name, "value")
    connection.putheader("X-Fine", "value")


def test_a_malformed_runtime_api_answer_is_one_runtime_api_error() -> None:
    with peer_answering(b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id abc\r\n\r\n") as (port, _):
        client = RuntimeAPIClient(f"127.0.0.1:{port}")
        with pytest.raises(RuntimeAPIError, match="GET /2018-06-01/runtime/invocation/next failed: "):
            client.next_invocation()


@pytest.mark.parametrize(
    "request_id",
    ["8476a536-e9f4-11e8-9739-2dfe598c3fcd", "../../init/error", "a b?c#d", "ünï/cødé", "~keep_these.-"],
)
def test_a_request_id_is_quoted_as_urllib_quotes_one_path_segment(request_id: str) -> None:
    from urllib.parse import quote

    assert _quote(request_id) == quote(request_id, safe="")


def test_a_connection_tunnels_through_a_proxy_with_connect() -> None:
    """What urllib3 uses for HTTPS through a proxy: CONNECT first, then the request on the same socket."""
    established = b"HTTP/1.1 200 Connection established\r\n\r\n"
    with peer_answering(established, b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ntunnels") as (port, received):
        connection = http11.HTTPConnection("127.0.0.1", port)
        connection.set_tunnel("example.com", 443, {"Proxy-Authorization": "Basic eA=="})
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"tunnels"
    assert received[0] == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic eA==\r\n\r\n"
    )
    assert received[1].startswith(b"GET / HTTP/1.1\r\nHost: example.com:443\r\n")


def test_a_proxy_that_refuses_the_tunnel_is_an_os_error() -> None:
    refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    with peer_answering(refusal) as (port, _):
        connection = http11.HTTPConnection("127.0.0.1", port)
        connection.set_tunnel("example.com", 443)
        with pytest.raises(OSError, match="Tunnel connection failed: 407"):
            connection.request("GET", "/")
