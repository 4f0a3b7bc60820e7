"""What the runtime does for its own cold start never reaches user code.

The runtime keeps TLS, hashing and most of its vendored urllib3 out of its
own start-up (lazily on Python 3.15+, by build-time patches to its private copy
on every version). A handler must still find the interpreter exactly as a plain
``python`` gives it: real ``ssl``, ``hashlib`` and ``http.client`` modules, no
``None`` placeholders in ``sys.modules``, no lazy-import mode left switched on,
and its own urllib3 and botocore working over HTTPS. The same handler runs under
the real emulator and under a plain interpreter, and both must answer alike;
``./dev matrix`` runs it on Debian's 3.13 to 3.15 too, where 3.15's lazy imports are at work.
"""

from __future__ import annotations

import http.server
import importlib.metadata
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pylambda_build.emulator import Emulator
from testkit import sid_root

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
def tls_server(serve_tls: Callable[..., tuple[Path, int]]) -> tuple[Path, int]:
    return serve_tls(_TLSHandler)


@pytest.fixture(scope="module")
def function_root(tmp_path_factory: pytest.TempPathFactory, tls_server: tuple[Path, int]) -> Path:
    """The handler as a function ships it: beside botocore (which brings its own urllib3) and the server's CA."""
    root = tmp_path_factory.mktemp("function")
    pin = f"botocore=={importlib.metadata.version('botocore')}"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(root)]
    subprocess.run([*command, pin], check=True, capture_output=True)
    (root / "unchanged_interpreter.py").write_text(HANDLER)
    shutil.copy(tls_server[0], root / "ca.pem")
    return root


def test_user_code_sees_the_interpreter_a_plain_python_gives_it(
    emulator: Callable[..., Emulator],
    runtime_python: tuple[Path | None, Path],
    function_root: Path,
    tls_server: tuple[Path, int],
) -> None:
    event = {"cafile": str(function_root / "ca.pem"), "port": tls_server[1], "task_root": str(function_root)}

    with emulator(function_root, "unchanged_interpreter.handler") as running:
        result = running.invoke(json.dumps(event))
        assert not result.failed, result.body
        under_runtime = result.json()

    # The same handler on the same interpreter (Debian's, in the sid root, under PYLAMBDA_TEST_PYTHON), plainly.
    root, python_dir = runtime_python
    prefix = [] if root is None else sid_root.enter(root, [function_root, python_dir])
    program = "import json, sys, unchanged_interpreter as m; print(json.dumps(m.handler(json.loads(sys.argv[1]), 0)))"
    plain = subprocess.run(
        [*prefix, str(python_dir / "python3"), "-c", program, json.dumps(event)],
        cwd=function_root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(function_root)},
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


PROBE = """
import sys


def handler(event, context):
    stdlib = sys.modules["os"].__file__.rsplit("/", 1)[0]
    found = {}
    for name in event["modules"]:
        module = sys.modules.get(name)
        where = getattr(module, "__file__", None) or ""
        found[name] = "absent" if module is None else "stdlib" if where.startswith(stdlib) else where or "built in"
    return found
"""

LEAN_PATH_SKIPS = ["ssl", "_ssl", "http.client", "email", "email.parser", "email.message", "urllib.parse"]


def test_the_runtime_leaves_ssl_http_client_and_email_unimported_for_user_code(
    emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    """What the runtime's HTTP path does not import stays for user code to import itself, from the standard library."""
    (tmp_path / "probe.py").write_text(PROBE)
    with emulator(tmp_path, "probe.handler") as running:
        result = running.invoke(json.dumps({"modules": LEAN_PATH_SKIPS}))
    assert not result.failed, result.body
    assert result.json() == dict.fromkeys(LEAN_PATH_SKIPS, "absent")
