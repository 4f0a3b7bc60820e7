"""The runtime's vendored urllib3: fetched as the pinned wheel, unpacked into the layer's source, and trimmed.

The runtime speaks HTTP through urllib3, kept under ``pylambda._vendor`` so that a
function's own urllib3 never collides with it. Every cold start pays for what
importing it costs, so the copy is trimmed at build time (each edit below says
what it saves): package ``__init__`` files that re-export what the runtime never
calls are replaced, and exact-text patches move imports the runtime does not
need off the import path. All of it is checked against the pinned release: a
release that no longer matches stops the build instead of shipping a copy the
runtime was never measured or tested with.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

from . import CLONE, SOURCES, BuildError, cache_dir, file_sha256

# The pins (vendor.txt), and in a clone the unpacked copies that the tests and type checks import.
VENDOR_DIR = SOURCES / "layer" / "pylambda" / "_vendor"

# The package the wheels in vendor.txt are unpacked into.
VENDORED_AS = "pylambda._vendor"
# urllib3 modules that urllib3.connection imports but the runtime's plain-HTTP
# use of it needs late or never: its request and response handling, HTTP/2, proxies.
URLLIB3_LAZY = (
    "_base_connection",
    "_collections",
    "exceptions",
    "http2",
    "util",  # for "from .util import connection"
    "util.request",
    "util.response",
)

# Parts of vendored packages the runtime never imports: it speaks plain
# HTTP/1.1 to a local API, so no SOCKS, pyOpenSSL or browser shims.
VENDOR_SKIP = ("urllib3/contrib/",)

# Edits to vendored code, each for a measured reason: (file, exact old text, new text).
# The build stops if a pinned release no longer has the old text, rather than ship unpatched.
VENDOR_PATCHES = [
    # Python 3.15+ (PEP 810): what urllib3.connection imports at the top for its
    # own request and response handling, HTTP/2 and proxies (URLLIB3_LAZY), none
    # of which the runtime uses, is loaded on first use instead of at start-up.
    # Older Pythons ignore __lazy_modules__. Scoped to this module: nothing
    # outside the vendored copy is lazy.
    (
        "urllib3/connection.py",
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\n"
        f"__lazy_modules__ = {[f'{VENDORED_AS}.urllib3.{module}' for module in URLLIB3_LAZY]!r}\n",
    ),
    # Class-based NamedTuples import annotationlib and ast on Python 3.14+
    # (about 8 ms of every cold start there); the call form does not. The
    # fields' types are only for type checkers, which do not read this copy.
    (
        "urllib3/connection.py",
        """class _WrappedAndVerifiedSocket(typing.NamedTuple):
    \"\"\"
    Wrapped socket and whether the connection is
    verified after the TLS handshake
    \"\"\"

    socket: ssl.SSLSocket | SSLTransport
    is_verified: bool
""",
        """# Wrapped socket and whether the connection is verified after the TLS handshake
_WrappedAndVerifiedSocket = typing.NamedTuple(
    "_WrappedAndVerifiedSocket", [("socket", typing.Any), ("is_verified", bool)]
)
""",
    ),
    (
        "urllib3/_base_connection.py",
        """class ProxyConfig(typing.NamedTuple):
    ssl_context: ssl.SSLContext | None
    use_forwarding_for_https: bool
    assert_hostname: None | str | typing.Literal[False]
    assert_fingerprint: str | None


class _ResponseOptions(typing.NamedTuple):
    # TODO: Remove this in favor of a better
    # HTTP request/response lifecycle tracking.
    request_method: str
    request_url: str
    preload_content: bool
    decode_content: bool
    enforce_content_length: bool
""",
        """ProxyConfig = typing.NamedTuple(
    "ProxyConfig",
    [
        ("ssl_context", typing.Any),
        ("use_forwarding_for_https", bool),
        ("assert_hostname", typing.Any),
        ("assert_fingerprint", typing.Any),
    ],
)
_ResponseOptions = typing.NamedTuple(
    "_ResponseOptions",
    [
        ("request_method", str),
        ("request_url", str),
        ("preload_content", bool),
        ("decode_content", bool),
        ("enforce_content_length", bool),
    ],
)
""",
    ),
    (
        "urllib3/util/request.py",
        """class ChunksAndContentLength(typing.NamedTuple):
    chunks: typing.Iterable[bytes] | None
    content_length: int | None
""",
        """ChunksAndContentLength = typing.NamedTuple(
    "ChunksAndContentLength", [("chunks", typing.Any), ("content_length", typing.Any)]
)
""",
    ),
    # A string forward reference in a Union at import does the same; the alias
    # only ever appears in annotations, which this module does not evaluate.
    (
        "urllib3/_collections.py",
        """ValidHTTPHeaderSource = typing.Union[
    "HTTPHeaderDict",
    typing.Mapping[str, str],
    typing.Iterable[tuple[str, str]],
    "HasGettableStringKeys",
]
""",
        """if typing.TYPE_CHECKING:
    ValidHTTPHeaderSource = typing.Union[
        "HTTPHeaderDict",
        typing.Mapping[str, str],
        typing.Iterable[tuple[str, str]],
        "HasGettableStringKeys",
    ]
""",
    ),
    # The brotli and zstd probes cost 2 ms on Python 3.14+ (they load
    # compression.zstd) and, once the task root is on sys.path, would import
    # such packages from the function's own code. All they do is add to the
    # Accept-Encoding that make_headers() offers; the runtime never asks for compressed answers.
    (
        "urllib3/util/request.py",
        """ACCEPT_ENCODING = "gzip,deflate"
try:
    try:
        import brotlicffi as _unused_module_brotli  # type: ignore[import-not-found] # noqa: F401
    except ImportError:
        import brotli as _unused_module_brotli  # type: ignore[import-not-found] # noqa: F401
except ImportError:
    pass
else:
    ACCEPT_ENCODING += ",br"

try:
    if sys.version_info >= (3, 14):
        from compression import zstd as _unused_module_zstd  # noqa: F401
    else:
        from backports import zstd as _unused_module_zstd  # noqa: F401
except ImportError:
    pass
else:
    ACCEPT_ENCODING += ",zstd"
""",
        """ACCEPT_ENCODING = "gzip,deflate"  # pylambda: brotli and zstd are not probed for
""",
    ),
    # The idna codec (with stringprep and unicodedata: about 1.5 ms) is loaded
    # to check a host name's labels, and again inside getaddrinfo for any str
    # name. An ASCII name, as the Runtime API's address is, goes to getaddrinfo
    # as bytes instead, which needs no codec; getaddrinfo still refuses a malformed one.
    (
        "urllib3/util/connection.py",
        """    try:
        host.encode("idna")
    except UnicodeError:
        raise LocationParseError(f"'{host}', label empty or too long") from None

    for res in socket.getaddrinfo(host, port, family, socket.SOCK_STREAM):
""",
        """    if host.isascii():
        lookup = host.encode()
    else:
        try:
            lookup = host.encode("idna")
        except UnicodeError:
            raise LocationParseError(f"'{host}', label empty or too long") from None

    for res in socket.getaddrinfo(lookup, port, family, socket.SOCK_STREAM):
""",
    ),
    # TLS certificate and host name checking, and URL parsing (whose regular
    # expressions are compiled at import: 10 ms on Python 3.11), are imported
    # by the first HTTPS connection or URL, not by every import of the module:
    # together about a third of urllib3's cost at a cold start before 3.15
    # (from 3.15, __lazy_modules__ above does the same). SKIP_HEADER came
    # through util's package __init__, which VENDOR_INITS empties.
    (
        "urllib3/connection.py",
        """from .util import SKIP_HEADER, SKIPPABLE_HEADERS, connection, ssl_
from .util.request import body_to_chunks
from .util.ssl_ import assert_fingerprint as _assert_fingerprint
from .util.ssl_ import (
    create_urllib3_context,
    is_ipaddress,
    resolve_cert_reqs,
    resolve_ssl_version,
    ssl_wrap_socket,
)
from .util.ssl_match_hostname import CertificateError, match_hostname
from .util.url import Url
""",
        """from .util import connection
from .util.request import SKIP_HEADER, SKIPPABLE_HEADERS, body_to_chunks


def _import_tls_support() -> None:
    \"\"\"pylambda: import what HTTPS connections and URLs need, once, when first needed.\"\"\"
    global ssl, ssl_, _assert_fingerprint, create_urllib3_context, is_ipaddress, resolve_cert_reqs
    global resolve_ssl_version, ssl_wrap_socket, CertificateError, match_hostname, Url, datetime, RECENT_DATE
    import datetime
    import ssl

    RECENT_DATE = datetime.date(2025, 1, 1)

    from .util import ssl_
    from .util.ssl_ import assert_fingerprint as _assert_fingerprint
    from .util.ssl_ import (
        create_urllib3_context,
        is_ipaddress,
        resolve_cert_reqs,
        resolve_ssl_version,
        ssl_wrap_socket,
    )
    from .util.ssl_match_hostname import CertificateError, match_hostname
    from .util.url import Url
""",
    ),
    # datetime (a pure-Python module before 3.12) only checks the clock before a TLS handshake.
    ("urllib3/connection.py", "import datetime\nimport http.client\n", "import http.client\n"),
    (
        "urllib3/connection.py",
        "current date.\nRECENT_DATE = datetime.date(2025, 1, 1)\n",
        "current date.\n# pylambda: RECENT_DATE is set by _import_tls_support(), which imports datetime.\n",
    ),
    # base64 (with struct) for basic-auth headers the runtime never sends: binascii does the same.
    (
        "urllib3/util/request.py",
        "from base64 import b64encode\n",
        "from binascii import b2a_base64\n\n\n"
        "def b64encode(data: bytes) -> bytes:\n"
        '    """pylambda: base64.b64encode, without importing base64 at start-up."""\n'
        "    return b2a_base64(data, newline=False)\n",
    ),
    # ssl itself (OpenSSL's libraries: most of the RSS a bare runtime adds)
    # comes with the first HTTPS connection too; BaseSSLError, which the
    # response and pool modules catch, is looked up when they import it.
    (
        "urllib3/connection.py",
        """try:  # Compiled with SSL?
    import ssl

    BaseSSLError = ssl.SSLError
except (ImportError, AttributeError):
    ssl = None  # type: ignore[assignment]

    class BaseSSLError(BaseException):  # type: ignore[no-redef]
        pass
""",
        """ssl = None  # pylambda: imported by _import_tls_support() for the first HTTPS connection


def __getattr__(name: str) -> typing.Any:
    \"\"\"pylambda: ``BaseSSLError`` (ssl.SSLError) for the modules that catch it, importing ssl only then.\"\"\"
    if name == "BaseSSLError":
        import ssl as _ssl

        return _ssl.SSLError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
""",
    ),
    (
        "urllib3/connection.py",
        """if not ssl:
    HTTPSConnection = DummyConnection  # type: ignore[misc, assignment] # noqa: F811
""",
        "",
    ),
    (
        "urllib3/connection.py",
        """        key_password: str | None = None,
    ) -> None:
        super().__init__(
""",
        """        key_password: str | None = None,
    ) -> None:
        _import_tls_support()
        super().__init__(
""",
    ),
    (
        "urllib3/connection.py",
        """    scheme = "https" if isinstance(conn, HTTPSConnection) else "http"
""",
        """    _import_tls_support()
    scheme = "https" if isinstance(conn, HTTPSConnection) else "http"
""",
    ),
    (
        "urllib3/_base_connection.py",
        """from .util.url import Url
""",
        """if typing.TYPE_CHECKING:
    from .util.url import Url
""",
    ),
    # The standard http.client, which urllib3's connection is built on, imports
    # ssl (with OpenSSL's libraries) and the email package on every cold start,
    # for a plain-HTTP loopback API: the copy builds on pylambda.http11 instead
    # (which says what it covers), and email's names are needed only for
    # annotations or for defects that http11's head parser never records.
    (
        "urllib3/connection.py",
        """import http.client
""",
        """from pylambda import http11
""",
    ),
    (
        "urllib3/connection.py",
        """from http.client import HTTPConnection as _HTTPConnection
from http.client import HTTPException as HTTPException  # noqa: F401
from http.client import ResponseNotReady
""",
        """from pylambda.http11 import HTTPConnection as _HTTPConnection
from pylambda.http11 import HTTPException as HTTPException  # noqa: F401
from pylambda.http11 import ResponseNotReady
""",
    ),
    (
        "urllib3/connection.py",
        "    message: http.client.HTTPMessage,\n",
        "    message: http11.HTTPMessage,\n",
    ),
    # urllib3's copy of http.client's CONNECT code for older Pythons would
    # replace http11's own, which every Python uses.
    (
        "urllib3/connection.py",
        "    if sys.version_info < (3, 11, 16) or ((3, 12) <= sys.version_info < (3, 12, 14)):\n",
        "    if False:  # pylambda: the CONNECT code for older Pythons; http11 has its own\n",
    ),
    (
        "urllib3/exceptions.py",
        """from email.errors import MessageDefect
from http.client import IncompleteRead as httplib_IncompleteRead
""",
        """from pylambda import http11

httplib_IncompleteRead = http11.IncompleteRead
if typing.TYPE_CHECKING:
    from email.errors import MessageDefect
""",
    ),
    (
        "urllib3/util/response.py",
        """import http.client as httplib
from email.errors import MultipartInvariantViolationDefect, StartBoundaryNotFoundDefect
""",
        """from pylambda import http11 as httplib

# pylambda: http11's parser raises on a malformed head and records no email defects.
MultipartInvariantViolationDefect = StartBoundaryNotFoundDefect = ()
""",
    ),
    (
        "urllib3/response.py",
        """from http.client import HTTPMessage as _HttplibHTTPMessage
from http.client import HTTPResponse as _HttplibHTTPResponse
""",
        """from pylambda.http11 import HTTPMessage as _HttplibHTTPMessage
from pylambda.http11 import HTTPResponse as _HttplibHTTPResponse
""",
    ),
    # urllib3's optional HTTP/2 support imports importlib.metadata at import time
    # (about 13 ms of CPU on every cold start) for a version check that only
    # inject_into_urllib3() needs; the runtime never calls it. Import it there.
    ("urllib3/http2/__init__.py", "from importlib.metadata import version\n\n", ""),
    (
        "urllib3/http2/__init__.py",
        '    h2_version = version("h2")',
        '    from importlib.metadata import version\n\n    h2_version = version("h2")',
    ),
]

# Package __init__ files replaced whole: (file, sha256 of the pinned release's file, new text).
# urllib3's own re-export its pool, retry, response and multipart layers and
# build a PoolManager at import: about half of urllib3's import cost, for APIs
# the runtime never calls (it uses urllib3.connection alone). Every module
# stays in the package and importable by its full name. The build stops if a
# new release changes one of these files, so that someone reads it again.
VENDOR_INITS = [
    (
        "urllib3/__init__.py",
        "24ca35b60d67215d40789daf10d0bf4f17e5d1ee61e86ce5f43195935ad645ba",
        '"""urllib3 as pylambda vendors it: the modules, without the package-level re-exports."""\n\n'
        "from ._version import __version__ as __version__\n",
    ),
    (
        "urllib3/util/__init__.py",
        "faa792d1071e8af6b3bc110a0cd142008fba00271d0ce1384ccbe8ed22cd9404",
        '"""urllib3.util as pylambda vendors it: the modules, without the package-level re-exports."""\n',
    ),
]


class Vendored(NamedTuple):
    """A wheel pinned in ``_vendor/vendor.txt``; ``top_level``: a module user code imports by its own name."""

    name: str
    version: str
    sha256: str
    top_level: bool

    def unpacked(self, into: Path) -> Path:
        """Where ``vendor`` puts it in ``into``: a package folder, or a module file."""
        return into / (f"{self.name}.py" if self.top_level else self.name)


def vendored_packages() -> list[Vendored]:
    """Each wheel pinned in ``_vendor/vendor.txt``: ``name==version sha256``, then ``top-level`` for a module."""
    pins = []
    for line in (VENDOR_DIR / "vendor.txt").read_text().splitlines():
        pin = line.split("#", 1)[0].split()
        if pin:
            name, version = pin[0].split("==")
            pins.append(Vendored(name, version, pin[1], pin[2:] == ["top-level"]))
    return pins


def fetch_wheel(name: str, version: str, sha256: str) -> Path:
    """The pinned wheel, from the cache or through pip (which honours the user's index settings)."""
    wheel = cache_dir() / "wheels" / f"{name}-{version}-py3-none-any.whl"
    if not wheel.exists() or file_sha256(wheel) != sha256:
        wheel.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheel.parent) as scratch:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            command += ["--only-binary=:all:", "--dest", scratch, f"{name}=={version}"]
            pip = subprocess.run(command, check=False, capture_output=True, text=True)
            if pip.returncode != 0:
                raise BuildError(f"could not download {name}=={version} with pip:\n{pip.stderr.strip()}")
            downloaded = Path(scratch) / wheel.name
            if not downloaded.exists() or file_sha256(downloaded) != sha256:
                raise BuildError(f"{name}=={version}: the downloaded wheel does not match the pinned sha256")
            downloaded.replace(wheel)
    return wheel


def vendor() -> Path:
    """Unpack the pinned wheels and patch them, unless already done; return the folder holding them.

    In a clone that is ``layer/pylambda/_vendor``, where the tests and the type
    checker import them; an installed ``pylambda`` never writes into its own
    package (site-packages may be read-only), so it keeps them in the cache.
    """
    into = VENDOR_DIR if CLONE is not None else cache_dir() / "vendor"
    into.mkdir(parents=True, exist_ok=True)
    patches = hashlib.sha256(repr((VENDOR_INITS, VENDOR_PATCHES)).encode()).hexdigest()
    for pin in vendored_packages():
        stamp = into / f"{pin.name}.pinned"
        if pin.unpacked(into).exists() and stamp.exists() and stamp.read_text() == f"{pin.sha256} {patches}":
            continue
        unpack_patched(fetch_wheel(pin.name, pin.version, pin.sha256), pin.name, into)
        stamp.write_text(f"{pin.sha256} {patches}")
    return into


Patch = tuple[str, str, str]


def unpack_patched(
    wheel: Path, name: str, into: Path, inits: list[Patch] = VENDOR_INITS, patches: list[Patch] = VENDOR_PATCHES
) -> None:
    """Unpack package ``name`` from ``wheel`` into ``into/name`` (or module ``name.py`` into ``into``), then replace
    its ``inits`` and apply its ``patches``.

    Stops with a BuildError at the first that does not fit the release, rather
    than ship a copy the runtime was not measured and tested with.
    """
    target = into / name
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            keep = member.startswith(f"{name}/") and not member.startswith(VENDOR_SKIP)
            if keep or member == f"{name}.py":
                archive.extract(member, into)
            elif member.endswith("/LICENSE.txt") and target.is_dir():
                (target / "LICENSE.txt").write_bytes(archive.read(member))
    for path, upstream, text in inits:
        if path.startswith(f"{name}/"):
            if file_sha256(into / path) != upstream:
                raise BuildError(f"{path} changed in this {name} release: review it, then update VENDOR_INITS")
            (into / path).write_text(text)
    for path, old, new in patches:
        if path.startswith(f"{name}/"):
            source = into / path
            text = source.read_text()
            if text.count(old) != 1:
                first = old.strip().splitlines()[0]
                raise BuildError(
                    f"vendor patch no longer applies to {path} (at {first!r}):"
                    " update VENDOR_PATCHES in pylambda_build/vendoring.py"
                )
            source.write_text(text.replace(old, new))
