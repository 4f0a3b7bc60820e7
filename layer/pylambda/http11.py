"""Plain HTTP/1.1 over a socket: the base the vendored urllib3 builds its connection on.

urllib3's ``HTTPConnection`` subclasses the standard ``http.client`` one, and
importing ``http.client`` loads ``ssl`` (with OpenSSL's libraries) and the
``email`` package (for parsing response heads as RFC 5322 messages) on every
cold start: about a third of a bare runtime's start-up CPU and most of the RSS
it adds over the official client, for a loopback API spoken in plain HTTP/1.1.
The build points the vendored copy here instead (``pylambda_build/vendoring.py``).

What is here is the part of ``http.client``'s interface that urllib3's
connection and response, and the runtime, use: a connection that frames
requests, a response that reads a head and a body (by length, chunked, or to
the end), and the exception names urllib3 catches. HTTPS still works: urllib3
wraps the socket in TLS itself, loading ``ssl`` only then. The standard
``http.client`` is never touched, so user code sees its own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import BinaryIO

# Limits on what a server may send, as http.client has them: a head is read line by line.
_MAXLINE = 65536
_MAXHEADERS = 100
# A request body up to this size goes out in the same write as the head.
_ONE_WRITE = 64 * 1024

HTTP_PORT = 80


class HTTPException(Exception):
    """Something about the HTTP exchange itself went wrong."""


class ResponseNotReady(HTTPException):
    """A response was asked for before a request was sent."""


class CannotSendRequest(HTTPException):
    """A request was started while the previous response was still unread."""


class IncompleteRead(HTTPException):
    """The body ended before the length the server announced."""

    def __init__(self, partial: bytes, expected: int | None = None) -> None:
        super().__init__(partial, expected)
        self.partial = partial
        self.expected = expected

    def __str__(self) -> str:
        more = f", {self.expected} more expected" if self.expected is not None else ""
        return f"IncompleteRead({len(self.partial)} bytes read{more})"


class LineTooLong(HTTPException):
    """A status, header or chunk-size line longer than any server has reason to send."""


class BadStatusLine(HTTPException):
    """The answer does not start with an HTTP/1.x status line."""


class BadHeaderLine(HTTPException):
    """A header line without a name and a colon, or too many header lines."""


class RemoteDisconnected(ConnectionResetError, BadStatusLine):
    """The server closed the connection instead of answering."""


class HTTPMessage:
    """A response's header fields: looked up by case-insensitive name, in the order received.

    Names and values are decoded as Latin-1, as HTTP/1.1 defines them.
    ``is_multipart``, ``get_payload`` and ``defects`` answer urllib3's check
    that a head parsed cleanly; a head that does not parse raises instead.
    """

    defects: list[Any] = []  # noqa: RUF012 - read-only, shared: a malformed head raises

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        self._first: dict[str, str] | None = None  # lower-case name -> first value, made at the first lookup

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of field ``name``, or ``default``."""
        first = self._first
        if first is None:  # a `next` answer is asked for a dozen fields: one pass over them, not one per field
            first = self._first = {}
            for key, value in self._fields:
                first.setdefault(key.lower(), value)
        return first.get(name.lower(), default)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        """Every value of field ``name``, in order, or ``failobj`` if there is none."""
        name = name.lower()
        values = [value for key, value in self._fields if key.lower() == name]
        return values or failobj

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [key for key, _ in self._fields]

    def values(self) -> list[str]:
        return [value for _, value in self._fields]

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)  # type: ignore[no-any-return]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._fields)

    def is_multipart(self) -> bool:
        return False

    def get_payload(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"HTTPMessage({self._fields!r})"


def _read_line(fp: BinaryIO, what: str) -> bytes:
    line = fp.readline(_MAXLINE + 1)
    if len(line) > _MAXLINE:
        raise LineTooLong(f"{what} longer than {_MAXLINE} bytes")
    return line


def parse_status_line(line: bytes) -> tuple[int, int, str]:
    """``HTTP/1.1 200 OK`` -> (11, 200, "OK"); anything else is a BadStatusLine."""
    version, _, rest = line.rstrip(b"\r\n").partition(b" ")
    status, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(status) != 3 or not status.isdigit():
        raise BadStatusLine(repr(line[:80]))
    return (11 if version == b"HTTP/1.1" else 10), int(status), reason.strip().decode("latin-1")


def read_fields(fp: BinaryIO) -> HTTPMessage:
    """Header lines up to the empty line that ends a head. A line folded onto the next continues its field."""
    fields: list[tuple[str, str]] = []
    while True:
        line = _read_line(fp, "header line")
        if line in (b"\r\n", b"\n", b""):
            return HTTPMessage(fields)
        if len(fields) >= _MAXHEADERS:
            raise BadHeaderLine(f"more than {_MAXHEADERS} header lines")
        if line[:1] in (b" ", b"\t") and fields:
            folded, start = fields[-1]
            fields[-1] = (folded, f"{start} {line.strip().decode('latin-1')}")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise BadHeaderLine(repr(line[:80]))
        fields.append((name.decode("latin-1"), value.strip().decode("latin-1")))


class HTTPResponse:
    """One answer read from a connection's socket: ``begin`` reads the head, ``read`` the body."""

    def __init__(
        self, sock: socket.socket, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ) -> None:
        self.fp: BinaryIO | None = sock.makefile("rb")
        self._method = method
        self.status: int = 0
        self.reason = ""
        self.version = 11
        self.msg = self.headers = HTTPMessage([])
        self.chunked = False
        self.chunk_left: int | None = None
        self.length: int | None = None
        self.will_close = True

    def begin(self) -> None:
        """Read the status line and header fields (skipping 1xx interim answers) and work out how the body is framed."""
        fp = self._open()
        while True:
            line = _read_line(fp, "status line")
            if not line:
                raise RemoteDisconnected("the server closed the connection without answering")
            self.version, self.status, self.reason = parse_status_line(line)
            if not 100 <= self.status < 200:
                break
            read_fields(fp)  # an interim answer's head; the real one follows
        self.msg = self.headers = read_fields(fp)
        connection = (self.msg.get("connection") or "").lower()
        self.will_close = "close" in connection or (self.version == 10 and "keep-alive" not in connection)
        self.chunked = "chunked" in (self.msg.get("transfer-encoding") or "").lower()
        length = None if self.chunked else self.msg.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise BadHeaderLine(f"Content-Length: {length}")
            self.length = int(length)
        if self.status in (204, 304) or self._method == "HEAD":
            self.length = 0
        if not self.chunked and self.length is None:
            self.will_close = True  # the body runs to the end of the connection

    def _open(self) -> BinaryIO:
        if self.fp is None:
            raise ValueError("I/O operation on a closed response")
        return self.fp

    def read(self, amt: int | None = None) -> bytes:
        """The rest of the body, or at most ``amt`` bytes of it."""
        if self.fp is None:
            return b""
        if self.chunked:
            return self._read_chunked(amt)
        if self.length == 0:
            self.close()
            return b""
        if self.length is not None and (amt is None or amt > self.length):
            amt = self.length
        data = self.fp.read() if amt is None else self.fp.read(amt)
        if self.length is not None:
            if len(data) < amt:  # type: ignore[operator]
                self.close()
                raise IncompleteRead(data, amt - len(data))  # type: ignore[operator]
            self.length -= len(data)
        if not data or self.length == 0:
            self.close()
        return data

    def read1(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes with at most one read from the socket."""
        if self.fp is None or self.length == 0:
            return b""
        if self.chunked:
            return self._read_chunked(None if n < 0 else n)
        if self.length is not None and (n < 0 or n > self.length):
            n = self.length
        data = self.fp.read1(n)  # type: ignore[attr-defined]
        if self.length is not None:
            if not data and n:
                self.close()
                raise IncompleteRead(data, self.length)
            self.length -= len(data)
        if not data or self.length == 0:
            self.close()
        return data  # type: ignore[no-any-return]

    def _read_chunked(self, amt: int | None) -> bytes:
        fp = self._open()
        parts: list[bytes] = []
        while amt is None or amt > 0:
            if not self.chunk_left:
                line = _read_line(fp, "chunk size line").split(b";", 1)[0].strip()
                try:
                    self.chunk_left = int(line, 16)
                except ValueError:
                    self.close()
                    raise IncompleteRead(b"".join(parts)) from None
                if self.chunk_left == 0:
                    read_fields(fp)  # trailers, if any, end with an empty line
                    self.close()
                    break
            take = self.chunk_left if amt is None else min(amt, self.chunk_left)
            parts.append(self._safe_read(take))
            self.chunk_left -= take
            if amt is not None:
                amt -= take
            if self.chunk_left == 0:
                self._safe_read(2)  # the CRLF after a chunk's data
        return b"".join(parts)

    def _safe_read(self, amt: int) -> bytes:
        """Exactly ``amt`` bytes, or IncompleteRead."""
        data = self._open().read(amt)
        if len(data) < amt:
            raise IncompleteRead(data, amt - len(data))
        return data

    def getheader(self, name: str, default: str | None = None) -> str | None:
        values = self.msg.get_all(name)
        return ", ".join(values) if values else default

    def getheaders(self) -> list[tuple[str, str]]:
        return self.msg.items()

    def fileno(self) -> int:
        return self._open().fileno()

    def isclosed(self) -> bool:
        return self.fp is None

    @property
    def closed(self) -> bool:
        return self.fp is None

    def readable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.fp is not None:
            fp, self.fp = self.fp, None
            fp.close()


class HTTPConnection:
    """One HTTP/1.1 connection to ``host:port``: requests are framed by hand and sent as whole as possible.

    urllib3 overrides how it connects (its socket options, proxies, TLS); this
    base frames requests (``putrequest``, ``putheader``, ``endheaders``,
    ``send``, ``request``) and reads the answer (``getresponse``).
    """

    default_port = HTTP_PORT
    response_class = HTTPResponse
    debuglevel = 0
    _http_vsn = 11
    _http_vsn_str = "HTTP/1.1"

    def __init__(
        self,
        host: str,
        port: int | None = None,
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
        blocksize: int = 8192,
    ) -> None:
        self.host = host
        self.port = port or self.default_port
        self.timeout = timeout
        self.source_address = source_address
        self.blocksize = blocksize
        self.sock: Any = None
        self._buffer: list[bytes] = []
        self._method: str | None = None
        self._response: HTTPResponse | None = None
        self._tunnel_host: str | None = None
        self._tunnel_port: int | None = None
        self._tunnel_headers: dict[str, str] = {}

    def set_tunnel(self, host: str, port: int | None = None, headers: dict[str, str] | None = None) -> None:
        """Reach ``host`` through the proxy this connection goes to, with a CONNECT request when it connects."""
        if self.sock is not None:
            raise RuntimeError("a tunnel must be set before the connection opens")
        self._tunnel_host, self._tunnel_port = host, port or self.default_port
        self._tunnel_headers = dict(headers or {})

    def _tunnel(self) -> None:
        host = f"[{self._tunnel_host}]" if ":" in (self._tunnel_host or "") else self._tunnel_host
        lines = [f"CONNECT {host}:{self._tunnel_port} HTTP/1.1", f"Host: {host}:{self._tunnel_port}"]
        lines += [f"{name}: {value}" for name, value in self._tunnel_headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = self.response_class(self.sock, method="CONNECT")
        try:
            fp = response._open()
            _, status, reason = parse_status_line(_read_line(fp, "status line"))
            read_fields(fp)
        finally:
            response.close()
        if status != 200:
            self.close()
            raise OSError(f"Tunnel connection failed: {status} {reason}")

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), self.timeout, self.source_address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tunnel_host:
            self._tunnel()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        response, self._response = self._response, None
        self._buffer.clear()
        self._method = None
        if sock is not None:
            sock.close()  # a response still reading keeps its own file on the socket
        if response is not None:
            response.close()

    def send(self, data: Any) -> None:
        """Send ``data`` now (bytes, a binary file, or an iterable of bytes), connecting first if need be."""
        if self.sock is None:
            self.connect()
        if isinstance(data, (bytes, bytearray, memoryview)):
            self.sock.sendall(data)
        elif hasattr(data, "read"):
            while block := data.read(self.blocksize):
                self.sock.sendall(block.encode("latin-1") if isinstance(block, str) else block)
        else:
            for block in data:
                self.sock.sendall(block)

    def putrequest(self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False) -> None:
        """Start a request: its request line, plus Host and Accept-Encoding unless told to skip them."""
        previous = self._response
        if previous is not None and not previous.isclosed() and previous.length != 0:
            raise CannotSendRequest("the previous response has not been read")
        self._response = None
        for part, what in ((method, "method"), (url, "URL")):
            # ASCII, printable (no control character, no DEL) and no space: checked in C, not per character.
            if not (part.isascii() and part.isprintable()) or " " in part or not part:
                raise ValueError(f"{what} cannot contain control characters, spaces or non-ASCII: {part!r}")
        self._method = method
        self._buffer = [f"{method} {url} {self._http_vsn_str}".encode("ascii")]
        if not skip_host:
            host = self._tunnel_host or self.host
            port = self._tunnel_port if self._tunnel_host else self.port
            host = f"[{host}]" if ":" in host and not host.startswith("[") else host
            self.putheader("Host", host if port == self.default_port else f"{host}:{port}")
        if not skip_accept_encoding:
            self.putheader("Accept-Encoding", "identity")

    def putheader(self, header: str | bytes, *values: str | bytes | int) -> None:
        """Add one header field; several values are joined as folded lines."""
        if self._method is None:
            raise CannotSendRequest("putheader before putrequest")
        name = header.encode("ascii") if isinstance(header, str) else header
        if not name or len(name.translate(None, b" \t\r\n:")) != len(name):  # checked in C, not per character
            raise ValueError(f"invalid header name {name!r}")
        encoded = [value if isinstance(value, bytes) else str(value).encode("latin-1") for value in values]
        value = b"\r\n\t".join(encoded)
        if b"\n" in value.replace(b"\r\n\t", b"") or b"\r" in value.replace(b"\r\n\t", b""):
            raise ValueError(f"invalid header value {value!r}")
        self._buffer.append(b"%s: %s" % (name, value))

    def endheaders(self, message_body: bytes | Iterable[bytes] | None = None, *, encode_chunked: bool = False) -> None:
        """Send the head, with ``message_body`` in the same write when it is bytes."""
        if self._method is None:
            raise CannotSendRequest("endheaders before putrequest")
        head = b"\r\n".join((*self._buffer, b"", b""))
        self._buffer = []
        if isinstance(message_body, (bytes, bytearray)) and not encode_chunked:
            # One write for the usual small body; a large one is not copied behind the head.
            if len(message_body) <= _ONE_WRITE:
                self.send(head + message_body)
            else:
                self.send(head)
                self.send(message_body)
            return
        self.send(head)
        if message_body is not None:
            if encode_chunked:
                for chunk in [message_body] if isinstance(message_body, bytes) else message_body:
                    if chunk:
                        self.send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                self.send(b"0\r\n\r\n")
            else:
                self.send(message_body)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | str | Iterable[bytes] | None = None,
        headers: dict[str, str] | Any = None,
        *,
        encode_chunked: bool = False,
    ) -> None:
        """Send a whole request; a body of bytes or text gets its Content-Length."""
        headers = headers or {}
        names = {name.lower() for name in headers}
        self.putrequest(method, url, skip_host="host" in names, skip_accept_encoding="accept-encoding" in names)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if "content-length" not in names and "transfer-encoding" not in names:
            if isinstance(body, (bytes, bytearray)):
                self.putheader("Content-Length", str(len(body)))
            elif body is None and method.upper() in ("POST", "PUT", "PATCH"):
                self.putheader("Content-Length", "0")
        for name, value in headers.items():
            self.putheader(name, value)
        self.endheaders(body, encode_chunked=encode_chunked)

    def getresponse(self) -> HTTPResponse:
        """Read the answer to the request just sent. After ``Connection: close`` the connection closes."""
        if self._method is None or self.sock is None:
            raise ResponseNotReady("no request has been sent")
        response = self.response_class(self.sock, self.debuglevel, method=self._method)
        try:
            response.begin()
        except BaseException:
            self.close()
            response.close()
            raise
        self._method = None
        if response.will_close:
            self.close()
        else:
            self._response = response
        return response
