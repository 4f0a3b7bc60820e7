#!/usr/bin/env python3
"""Build the pylambda layer and the example functions, and run them locally.

    python build.py                        build/layer/ with Python 3.15, build/layer.zip, build/functions/*.zip
    python build.py --python 3.13 --arch arm64
    python build.py --python none          a layer without an interpreter (uses python3 from PATH)
    python build.py invoke echo '{"a": 1}'  run a function on the built layer under the real emulator
    python build.py layer --into DIR        the layer's files only (what `sam build` calls)
    python build.py function echo --into DIR

The build itself uses the standard library only, plus pip to fetch the pinned
urllib3 wheel the runtime vendors. Interpreters come from python-build-standalone,
pinned by URL and sha256 in interpreters.json, and are cached (PYLAMBDA_CACHE).
``invoke`` needs the AWS Runtime Interface Emulator, which the ``aws-sam-cli``
package ships.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from buildlib import BuildError, cache_dir, file_sha256, interpreter
from buildlib.emulator import DEFAULT_HANDLER, Emulator, function_logs

ROOT = Path(__file__).resolve().parent
RUNTIME_SOURCE = ROOT / "layer"
VENDOR_DIR = RUNTIME_SOURCE / "pylambda" / "_vendor"
FUNCTIONS = ROOT / "functions"
PINS = ROOT / "interpreters.json"
PROVIDED_AL2023_GLIBC = (2, 34)  # Amazon Linux 2023's glibc: the newest symbol version a layer may need
DEFAULT_OUT = ROOT / "build"

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
    # Python 3.15+ (PEP 810): what urllib3.connection imports for TLS, proxies,
    # pools and its own request and response handling, none of which the
    # runtime uses, is loaded on first use instead of at start-up. Older Pythons
    # ignore __lazy_modules__. Scoped to this module: nothing outside the vendored copy is lazy.
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
    global ssl_, _assert_fingerprint, create_urllib3_context, is_ipaddress, resolve_cert_reqs
    global resolve_ssl_version, ssl_wrap_socket, CertificateError, match_hostname, Url
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

# Zip entries carry this date so that the same sources give the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


# --- vendoring ------------------------------------------------------------------------------------


def vendored_packages() -> list[tuple[str, str, str]]:
    """(name, version, sha256) for each wheel pinned in ``_vendor/vendor.txt``."""
    pins = []
    for line in (VENDOR_DIR / "vendor.txt").read_text().splitlines():
        pin = line.split("#", 1)[0].strip()
        if pin:
            requirement, sha256 = pin.split()
            name, version = requirement.split("==")
            pins.append((name, version, sha256))
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


def vendor() -> None:
    """Unpack the pinned wheels into ``layer/pylambda/_vendor`` and patch them, unless already done."""
    patches = hashlib.sha256(repr((VENDOR_INITS, VENDOR_PATCHES)).encode()).hexdigest()
    for name, version, sha256 in vendored_packages():
        stamp = VENDOR_DIR / f"{name}.pinned"
        if (VENDOR_DIR / name).is_dir() and stamp.exists() and stamp.read_text() == f"{sha256} {patches}":
            continue
        unpack_patched(fetch_wheel(name, version, sha256), name, VENDOR_DIR)
        stamp.write_text(f"{sha256} {patches}")


Patch = tuple[str, str, str]


def unpack_patched(
    wheel: Path, name: str, into: Path, inits: list[Patch] = VENDOR_INITS, patches: list[Patch] = VENDOR_PATCHES
) -> None:
    """Unpack package ``name`` from ``wheel`` into ``into/name``, then replace its ``inits`` and apply its ``patches``.

    Stops with a BuildError at the first that does not fit the release, rather
    than ship a copy the runtime was not measured and tested with.
    """
    target = into / name
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            keep = member.startswith(f"{name}/") and not member.startswith(VENDOR_SKIP)
            if keep:
                archive.extract(member, into)
            elif member.endswith("/LICENSE.txt"):
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
                raise BuildError(f"vendor patch no longer applies to {path}: update VENDOR_PATCHES in build.py")
            source.write_text(text.replace(old, new))


# --- the layer and the functions --------------------------------------------------------------------


class LayerSpec:
    """Which interpreter goes into the layer: ``python`` is 'none', a version, 'default' or a path."""

    def __init__(
        self,
        python: str = "none",
        arch: str = "x86_64",
        pins: Path = PINS,
        *,
        target_glibc: tuple[int, ...] = PROVIDED_AL2023_GLIBC,
        allow_newer_glibc: bool = False,
        compile_with: Path | None = None,
    ) -> None:
        self.python = python
        self.arch = arch
        self.pins = pins
        self.target_glibc = target_glibc
        self.allow_newer_glibc = allow_newer_glibc
        self.compile_with = compile_with

    def interpreter_source(self) -> Path:
        """The tarball or directory to bundle: a pinned download (cached) or the user's own."""
        if re.fullmatch(r"3\.\d+t", self.python):
            raise BuildError(
                f"--python {self.python}: pylambda does not bundle free-threaded interpreters;"
                f" use the regular build (--python {self.python[:-1]})"
            )
        if re.fullmatch(r"3\.\d+|default", self.python):
            pin = interpreter.find_pin(self.pins, self.python, self.arch)
            return interpreter.download(pin, cache_dir() / "python")
        path = Path(self.python)
        if not path.exists():
            raise BuildError(f"--python {self.python}: not 'none', a version such as 3.14, nor a tarball or directory")
        return path


def build_layer(into: Path, spec: LayerSpec) -> None:
    """Lay out the layer's files in ``into``: what Lambda unpacks into /opt."""
    vendor()
    into.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "bootstrap", into / "bootstrap")
    (into / "bootstrap").chmod(0o755)
    runtime = into / "pylambda" / "runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    for source in _source_files(RUNTIME_SOURCE):
        relative = source.relative_to(RUNTIME_SOURCE)
        if relative.name == "vendor.txt" or relative.suffix == ".pinned":
            continue
        _copy(source, runtime / relative)
    if spec.python == "none":
        return
    python = interpreter.install(spec.interpreter_source(), into, spec.arch)
    try:
        glibc = interpreter.check_glibc(python, spec.target_glibc, allow_newer=spec.allow_newer_glibc)
        print(glibc, file=sys.stderr)
        print(f"system     needs {', '.join(interpreter.system_libraries(python))}", file=sys.stderr)
        minor = python.name.removeprefix("python")
        with interpreter.compiler(python, spec.arch, spec.pins, spec.compile_with) as (compiler, name):
            interpreter.byte_compile(compiler, name, minor, python / "lib", runtime)
    except BuildError:
        shutil.rmtree(python)  # no layer that would fail at its first cold start
        raise


def package_function(name: str, into: Path) -> None:
    """Copy one function's handler code, and nothing else, into ``into``."""
    source = FUNCTIONS / name
    if not source.is_dir():
        known = ", ".join(sorted(function_names())) or "none"
        raise BuildError(f"no function named {name!r} in {FUNCTIONS} (known: {known})")
    into.mkdir(parents=True, exist_ok=True)
    for path in _source_files(source):
        if path.suffix == ".py":
            _copy(path, into / path.relative_to(source))


def function_names() -> list[str]:
    return sorted(path.name for path in FUNCTIONS.iterdir() if path.is_dir() and not path.name.startswith("."))


def build_all(out: Path, spec: LayerSpec) -> None:
    """Build the layer and every function, unpacked and zipped, under ``out``."""
    layer = out / "layer"
    shutil.rmtree(layer, ignore_errors=True)
    build_layer(layer, spec)
    write_zip(layer, out / "layer.zip")
    sizes = f"{_size(out / 'layer.zip')} zipped, {_size(layer)} unzipped"
    print(f"layer      {out / 'layer.zip'}  {sizes}", file=sys.stderr)
    for name in function_names():
        with tempfile.TemporaryDirectory() as scratch:
            package_function(name, Path(scratch))
            write_zip(Path(scratch), out / "functions" / f"{name}.zip")
        print(f"function   {out / 'functions' / (name + '.zip')}", file=sys.stderr)


def write_zip(directory: Path, zip_path: Path) -> None:
    """Zip a directory reproducibly: sorted entries, fixed dates, only the exec bit kept from modes."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_dir():
                continue
            entry = zipfile.ZipInfo(path.relative_to(directory).as_posix(), ZIP_EPOCH)
            entry.create_system = 3  # Unix, so that Lambda honours the mode bits
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            entry.external_attr = (stat.S_IFREG | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes(), compresslevel=9)
    partial.replace(zip_path)


def _source_files(directory: Path) -> Iterator[Path]:
    """Files under ``directory``, without caches or tests."""
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if path.is_file() and not any(p in ("__pycache__", "tests") or p.startswith(".") for p in parts):
            yield path


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o644)


def _size(path: Path) -> str:
    total = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return f"{total / 1e6:.2f} MB"


def invoke(name: str, event: str, out: Path, spec: LayerSpec, *, handler: str, timeout: int) -> int:
    """Run one function once on the built layer; print its response and logs."""
    build_all(out, spec)
    with tempfile.TemporaryDirectory() as task_root:
        with zipfile.ZipFile(out / "functions" / f"{name}.zip") as archive:
            archive.extractall(task_root)
        env = {"AWS_LAMBDA_FUNCTION_NAME": name}
        with Emulator(out / "layer" / "bootstrap", Path(task_root), handler, env=env, timeout=timeout) as emulator:
            result = emulator.invoke(event, timeout=timeout + 10)
            logs = emulator.wait_for_output("REPORT RequestId", timeout=2)
    print(f"--- logs of {name}", file=sys.stderr)
    print(function_logs(logs), file=sys.stderr)
    print(f"--- response of {name} (HTTP {result.status})", file=sys.stderr)
    sys.stdout.buffer.write(result.body + b"\n")
    return 1 if result.failed or result.status != 200 else 0


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build folder (default: build/)")
    parser.add_argument(
        "--python",
        default=os.environ.get("LAYER_PYTHON", "default"),
        help="interpreter to bundle: a version pinned in interpreters.json (3.12 to 3.15; 'default' is the newest),"
        " a python-build-standalone tarball or directory, or 'none' to use the python3 on PATH"
        " (default: $LAYER_PYTHON, else 'default')",
    )
    parser.add_argument(
        "--arch",
        choices=sorted(interpreter.TRIPLES),
        default=os.environ.get("LAYER_ARCH", "x86_64"),
        help="the functions' architecture (default: $LAYER_ARCH, else x86_64)",
    )
    parser.add_argument(
        "--pins", type=Path, default=PINS, help="pin table of interpreters (default: interpreters.json)"
    )
    parser.add_argument(
        "--allow-newer-glibc",
        action="store_true",
        default=os.environ.get("LAYER_ALLOW_NEWER_GLIBC") == "1",
        help="build even if the interpreter needs a newer glibc than provided.al2023's 2.34"
        " (default: $LAYER_ALLOW_NEWER_GLIBC=1)",
    )
    parser.add_argument(
        "--compile-with",
        type=Path,
        help="for a layer of another architecture than this machine's: a python3 of the bundled version that runs"
        " here, to byte-compile it (default: this machine's pinned build of that version, downloaded once)",
    )
    commands = parser.add_subparsers(dest="command")
    layer = commands.add_parser("layer", help="write the layer's files into a directory")
    layer.add_argument("--into", type=Path, required=True)
    function = commands.add_parser("function", help="write one function's files into a directory")
    function.add_argument("name")
    function.add_argument("--into", type=Path, required=True)
    run = commands.add_parser("invoke", help="build, then invoke a function once under the emulator")
    run.add_argument("name", help="a directory under functions/")
    run.add_argument("event", nargs="?", default="{}", help="the event as JSON text (default: {})")
    run.add_argument("--event", dest="event_file", type=Path, help="read the event from this file")
    run.add_argument("--handler", default=DEFAULT_HANDLER, help=f"the _HANDLER (default: {DEFAULT_HANDLER})")
    run.add_argument("--timeout", type=int, default=10, help="the function timeout in seconds (default: 10)")
    args = parser.parse_args(argv)

    spec = LayerSpec(
        args.python, args.arch, args.pins, allow_newer_glibc=args.allow_newer_glibc, compile_with=args.compile_with
    )
    try:
        if args.command == "layer":
            build_layer(args.into, spec)
        elif args.command == "function":
            package_function(args.name, args.into)
        elif args.command == "invoke":
            event = args.event_file.read_text() if args.event_file else args.event
            return invoke(args.name, event, args.out, spec, handler=args.handler, timeout=args.timeout)
        else:
            build_all(args.out, spec)
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
