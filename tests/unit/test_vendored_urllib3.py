"""The runtime's private urllib3: loaded lean, still whole, and never shipped with a patch that no longer fits.

The build trims what importing ``urllib3.connection`` costs (build.py,
VENDOR_INITS and VENDOR_PATCHES). The runtime must then load none of TLS,
URL parsing, pools or annotation machinery, while the copy's HTTPS support
keeps verifying certificates and host names when something does use it.
"""

from __future__ import annotations

import http.server
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pylambda_build import BuildError, layers, vendoring

RUNTIME = layers.RUNTIME_SOURCE
NOT_AT_START_UP = [
    "pylambda._vendor.urllib3.connectionpool",
    "pylambda._vendor.urllib3.poolmanager",
    "pylambda._vendor.urllib3.response",
    "pylambda._vendor.urllib3.util.retry",
    "pylambda._vendor.urllib3.util.ssl_",
    "pylambda._vendor.urllib3.util.ssl_match_hostname",
    "pylambda._vendor.urllib3.util.url",
    "hashlib",
    "hmac",
    "annotationlib",
    "compression.zstd",
    "encodings.idna",
]


def loaded_after(program: str) -> set[str]:
    code = f"import sys; sys.path.insert(0, {str(RUNTIME)!r}); {program}; print(' '.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_runtime_loads_no_tls_url_parsing_or_pool_module_at_start_up() -> None:
    loaded = loaded_after("import pylambda.runtime")
    assert "pylambda._vendor.urllib3.connection" in loaded
    assert loaded.isdisjoint(NOT_AT_START_UP), sorted(loaded.intersection(NOT_AT_START_UP))


def test_every_module_of_the_vendored_copy_still_imports() -> None:
    modules = sorted(
        ".".join(("pylambda", "_vendor", *path.relative_to(RUNTIME / "pylambda" / "_vendor").with_suffix("").parts))
        for path in (RUNTIME / "pylambda" / "_vendor" / "urllib3").rglob("*.py")
        if path.name != "__init__.py" and "http2" not in path.parts  # http2 needs the h2 package
    )
    loaded = loaded_after("; ".join(f"import {module}" for module in modules))
    assert set(modules) <= loaded


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(serve_tls: Callable[..., tuple[Path, int]]) -> tuple[Path, int]:
    return serve_tls(_Hello)


def test_the_vendored_https_connection_still_verifies_certificates_and_host_names(
    tls_server: tuple[Path, int],
) -> None:
    from pylambda._vendor.urllib3.connection import HTTPSConnection

    cert, port = tls_server
    trusted = HTTPSConnection("localhost", port, ca_certs=str(cert))
    trusted.request("GET", "/")
    assert trusted.getresponse().data == b"hello"

    wrong_name = HTTPSConnection("127.0.0.1", port, ca_certs=str(cert))  # the certificate names localhost only
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        wrong_name.request("GET", "/")
        wrong_name.getresponse()

    untrusted = HTTPSConnection("localhost", port)  # the system's CAs do not know this certificate
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed"):
        untrusted.request("GET", "/")
        untrusted.getresponse()


def urllib3_wheel() -> Path:
    [pin] = [pin for pin in vendoring.vendored_packages() if pin.name == "urllib3"]
    return vendoring.fetch_wheel(pin.name, pin.version, pin.sha256)


def test_a_patch_that_no_longer_fits_the_release_stops_the_build(tmp_path: Path) -> None:
    stale = [("urllib3/connection.py", "text this release does not have\n", "")]
    with pytest.raises(BuildError, match=r"vendor patch no longer applies to urllib3/connection\.py"):
        vendoring.unpack_patched(urllib3_wheel(), "urllib3", tmp_path, patches=stale)


def test_a_replaced_init_that_changed_upstream_stops_the_build(tmp_path: Path) -> None:
    changed = [("urllib3/__init__.py", "0" * 64, "")]
    with pytest.raises(BuildError, match=r"urllib3/__init__\.py changed in this urllib3 release"):
        vendoring.unpack_patched(urllib3_wheel(), "urllib3", tmp_path, inits=changed)
