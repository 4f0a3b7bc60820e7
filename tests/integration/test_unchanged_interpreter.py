"""What the runtime does for its own cold start never reaches user code.

The runtime keeps TLS, hashing and most of its vendored urllib3 out of its
own start-up (lazily on Python 3.15+, by build-time patches to its private copy
on every version). A handler must still find the interpreter exactly as a plain
``python`` gives it: real ``ssl``, ``hashlib`` and ``http.client`` modules, no
``None`` placeholders in ``sys.modules``, no lazy-import mode left switched on,
and its own urllib3 and botocore working over HTTPS. The same handler runs under
the real emulator and under a plain interpreter, and both must answer alike.
"""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from buildlib.emulator import Emulator

HANDLER = """
import hashlib
import hmac
import http.client
import json
import ssl
import sys
import sysconfig
import urllib.request


def handler(event, context):
    import botocore.session
    import urllib3

    cafile, port = event["cafile"], event["port"]
    url = f"https://localhost:{port}/"
    tls = ssl.create_default_context(cafile=cafile)

    connection = http.client.HTTPSConnection("localhost", port, context=tls)
    connection.request("GET", "/")
    with_http_client = connection.getresponse().read().decode()
    with_urlopen = urllib.request.urlopen(url, context=tls).read().decode()
    with_urllib3 = urllib3.PoolManager(ca_certs=cafile).request("GET", url).data.decode()
    s3 = botocore.session.get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=url,
        verify=cafile,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
    )
    buckets = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]

    stdlib = sysconfig.get_path("stdlib")
    lazy = None
    if hasattr(sys, "get_lazy_imports"):
        lazy = [sys.get_lazy_imports(), sys.get_lazy_imports_filter() is None]
    return {
        "http.client": with_http_client,
        "urlopen": with_urlopen,
        "urllib3": with_urllib3,
        "botocore": buckets,
        "sha256": hashlib.sha256(b"lambda").hexdigest(),
        "hmac": hmac.new(b"key", b"message", "sha256").hexdigest(),
        "none in sys.modules": sorted(name for name, module in sys.modules.items() if module is None),
        "stdlib modules from elsewhere": sorted(
            name
            for name in ("ssl", "hashlib", "hmac", "http.client", "urllib.request", "email.parser")
            if not sys.modules[name].__file__.startswith(stdlib)
        ),
        "urllib3 is the function's own": urllib3.__file__.startswith(event["task_root"]),
        "lazy imports (mode, no filter)": lazy,
        "ssl has its default context": ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED,
    }
"""

LIST_BUCKETS = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Owner><ID>1</ID></Owner><Buckets><Bucket><Name>orders</Name>"
    b"<CreationDate>2026-11-25T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>"
)


class _TLSHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        # botocore signs its requests (ListBuckets); the plain clients do not
        body = LIST_BUCKETS if self.headers.get("Authorization") else b"hello over TLS"
        self.send_response(200)
        self.send_header("Content-Type", "application/xml" if body is LIST_BUCKETS else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """An HTTPS server on loopback with a self-signed certificate for localhost: (its certificate, its port)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    request += ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(request, check=True, capture_output=True)
    cert.chmod(0o644)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TLSHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield cert, server.server_address[1]
    server.shutdown()


@pytest.fixture
def function_root(library_root: Path) -> Path:
    """The handler beside real libraries (botocore and its urllib3, from the Powertools install)."""
    (library_root / "unchanged_interpreter.py").write_text(HANDLER)
    return library_root


def test_user_code_sees_the_interpreter_a_plain_python_gives_it(
    emulator: Callable[..., Emulator], bare_python_dir: Path, function_root: Path, tls_server: tuple[Path, int]
) -> None:
    cert, port = tls_server
    event = {"cafile": str(cert), "port": port, "task_root": str(function_root)}

    with emulator(function_root, "unchanged_interpreter.handler") as running:
        result = running.invoke(json.dumps(event))
        assert not result.failed, result.body
        under_runtime = result.json()

    plain = subprocess.run(
        [
            str(bare_python_dir / "python3"),
            "-c",
            "import json, sys, unchanged_interpreter as m; print(json.dumps(m.handler(json.loads(sys.argv[1]), None)))",
            json.dumps(event),
        ],
        cwd=function_root,
        env={**os.environ, "PYTHONPATH": str(function_root)},
        capture_output=True,
        text=True,
        check=True,
    )
    under_plain_python = json.loads(plain.stdout)

    assert under_runtime == under_plain_python
    assert under_runtime["http.client"] == under_runtime["urlopen"] == under_runtime["urllib3"] == "hello over TLS"
    assert under_runtime["botocore"] == ["orders"]
    assert under_runtime["none in sys.modules"] == []
    assert under_runtime["stdlib modules from elsewhere"] == []
    assert under_runtime["urllib3 is the function's own"] is True
    assert under_runtime["lazy imports (mode, no filter)"] in (None, ["normal", True])
    assert under_runtime["ssl has its default context"] is True
