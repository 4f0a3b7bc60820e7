"""Shared fixtures: the built layer, a Python without urllib3, and task roots of handler code.

``PYLAMBDA_TEST_PYTHON=3.15`` (3.13, 3.14 or 3.15) runs every test that goes
through the ``emulator`` fixture on Debian sid's CPython of that version
instead of this machine's: the emulator and the runtime run inside the sid
root (testkit.sid_root), with that interpreter as the ``python3`` on PATH and
the layer built without one (``LAYER_PYTHON=none``). Tests that start no
runtime on ``runtime_python`` (which ``emulator`` uses) are skipped then, with the reason.
"""

from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layer"))

from pylambda_build import BuildError, cli, layers, standin, vendoring  # noqa: E402
from pylambda_build.emulator import Emulator, find_emulator  # noqa: E402
from testkit import docker_standin, sid_root  # noqa: E402
from testkit.localstack import LocalStack  # noqa: E402
from testkit.localstack import ensure_installed as ensure_localstack  # noqa: E402
from testkit.localstack import find_python as find_localstack_python  # noqa: E402

# The runtime package imports its vendored urllib3; make sure it is unpacked.
vendoring.vendor()

os.environ.setdefault("SAM_CLI_TELEMETRY", "0")

TEST_PYTHON = os.environ.get("PYLAMBDA_TEST_PYTHON") or None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With PYLAMBDA_TEST_PYTHON, skip the tests that would not run the runtime on that Python."""
    if TEST_PYTHON is None:
        return
    reason = f"starts no runtime on the Python under test, so it would not run on Debian's Python {TEST_PYTHON}"
    for item in items:
        if "runtime_python" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer and function zips, built once per test session into a scratch folder."""
    out = tmp_path_factory.mktemp("build")
    cli.build_all(out, layers.LayerSpec("none"))
    return out


@pytest.fixture(scope="session")
def bootstrap(build_dir: Path) -> Path:
    return build_dir / "layer" / "bootstrap"


@pytest.fixture(scope="session")
def standin_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python-build-standalone-shaped tarball of the interpreter running the tests: nothing is downloaded."""
    return standin.make_tarball(tmp_path_factory.mktemp("standin"))


@pytest.fixture(scope="session")
def bundled_build_dir(tmp_path_factory: pytest.TempPathFactory, standin_python: Path) -> Path:
    """The layer with the stand-in interpreter bundled and byte-compiled, and the function zips."""
    out = tmp_path_factory.mktemp("bundled-build")
    # The stand-in was built on this machine, whose glibc is newer than Lambda's: say that is fine here.
    cli.build_all(out, layers.LayerSpec(str(standin_python), allow_newer_glibc=True))
    return out


@pytest.fixture(scope="session")
def bare_python_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose python3 has nothing installed: proof the layer needs no urllib3 from outside."""
    venv = tmp_path_factory.mktemp("bare-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    probe = subprocess.run([venv / "bin" / "python3", "-c", "import urllib3"], capture_output=True, check=False)
    assert probe.returncode != 0, "the bare interpreter must not have urllib3"
    return venv / "bin"


@pytest.fixture(scope="session")
def pylambda_installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtual environment where this clone is installed as a user installs it.

    ``pip install CLONE``, with pip's build isolation: the wheel is built from
    pyproject.toml by the build backend pip fetches, as on a user's machine.
    """
    venv = tmp_path_factory.mktemp("pylambda-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)]
    done = subprocess.run(pip, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[None]:
    """A Docker daemon for the session (Debian's docker.io, installed and started if need be), or a skip saying why."""
    try:
        docker_standin.ensure_installed()
        daemon = docker_standin.start_daemon()
    except docker_standin.Unavailable as exc:
        pytest.skip(f"Docker unavailable: {exc}")
    yield
    if daemon is not None:
        docker_standin.stop_daemon(daemon)


@pytest.fixture(scope="session")
def image(docker_daemon: None) -> str:
    """The stand-in for the provided.al2023 image that `sam local` runs functions in (docker_standin)."""
    try:
        return docker_standin.ensure_image()
    except docker_standin.Unavailable as exc:
        pytest.skip(f"no stand-in image: {exc}")


def installed_env(installed: Path, **extra: str) -> dict[str, str]:
    """A user's shell: the installed pylambda first on PATH, no interpreter download (LAYER_PYTHON=none)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LAYER_")}
    env.update(PATH=f"{installed}:{env['PATH']}", LAYER_PYTHON="none", SAM_CLI_TELEMETRY="0")
    env["PYLAMBDA_RIE"] = str(find_emulator())  # aws-sam-cli ships it; that environment has only pylambda
    env.update(extra)
    return env


@pytest.fixture
def task_root(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    """Write handler files ({relative path: source}) into a fresh task root."""

    def write(files: Mapping[str, str]) -> Path:
        root = tmp_path / "task"
        root.mkdir(exist_ok=True)
        for name, source in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return root

    return write


@pytest.fixture(scope="session")
def runtime_python(tmp_path_factory: pytest.TempPathFactory, bare_python_dir: Path) -> tuple[Path | None, Path]:
    """(the root to run in, or None for this machine; the folder whose python3 the bootstrap finds first)."""
    if TEST_PYTHON is None:
        return None, bare_python_dir
    if os.getuid() != 0:
        pytest.fail("PYLAMBDA_TEST_PYTHON runs the tests in the sid root, which needs root (chroot)")
    root = sid_root.ensure()
    folder = tmp_path_factory.mktemp(f"sid-python{TEST_PYTHON}")
    folder.chmod(0o755)  # managed-instances mode runs the runtime as another user
    (folder / "python3").symlink_to(sid_root.python(TEST_PYTHON))
    return root, folder


@pytest.fixture
def emulator(
    bootstrap: Path, runtime_python: tuple[Path | None, Path], request: pytest.FixtureRequest
) -> Callable[..., Emulator]:
    """Start the real emulator on the built layer, with a python3 that has no urllib3 first on PATH.

    That python3 is this machine's, or with PYLAMBDA_TEST_PYTHON Debian's of that version, in the sid root.
    ``max_concurrency`` starts the emulator's managed-instances mode, which runs the runtime as a user that
    cannot reach this machine's python3 in pytest's private folders: there the layer with the bundled
    stand-in interpreter serves instead, unless the runtime runs on Debian's in the sid root.
    """
    root, python_dir = runtime_python
    path = os.environ["PATH"] if root is None else "/usr/local/bin:/usr/bin:/bin"

    def start(
        task: Path,
        handler: str = "app.handler",
        env: Mapping[str, str | None] | None = None,
        timeout: int = 10,
        max_concurrency: int | None = None,
    ) -> Emulator:
        environ: dict[str, str | None] = {"PATH": f"{python_dir}{os.pathsep}{path}"}
        environ.update(env or {})
        layer_bootstrap = bootstrap
        if max_concurrency is not None and root is None:
            layer_bootstrap = request.getfixturevalue("bundled_build_dir") / "layer" / "bootstrap"
        return Emulator(
            layer_bootstrap,
            task,
            handler,
            env=environ,
            timeout=timeout,
            max_concurrency=max_concurrency,
            enter=sid_root.entering(root),
            binds=[python_dir],
        )

    return start


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """LocalStack in host mode, installed on first use (its own venv, on Python 3.12+), for this session."""
    python = find_localstack_python()
    if python is None:
        pytest.skip("LocalStack needs Python 3.12 or newer: no python3.13/3.12 on PATH or in pyenv")
    try:
        installed = ensure_localstack(python)
        with LocalStack(installed, tmp_path_factory.mktemp("localstack")) as stack:
            yield stack
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


ServeTLS = Callable[[type[http.server.BaseHTTPRequestHandler]], tuple[Path, int]]


@pytest.fixture(scope="session")
def serve_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeTLS]:
    """Start HTTPS servers on loopback with a self-signed certificate for localhost: (the certificate, the port)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    request += ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(request, check=True, capture_output=True)
    cert.chmod(0o644)
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[Path, int]:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return cert, server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
