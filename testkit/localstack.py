"""LocalStack in host mode: AWS's control plane on this machine, for the deploy and publish tests.

``sam deploy`` and ``build.py publish`` talk to AWS; the tests point them at
LocalStack instead, through the standard ``AWS_ENDPOINT_URL``. LocalStack runs
as a plain Python process (``localstack-core`` from PyPI), with no Docker and no
network, under these conditions (each found by trying, see the shared notes):

- it needs Python 3.12 or newer while the project's tools run on 3.11, so it gets
  its own virtual environment, made once in the download cache from a pinned
  requirement list by pip;
- Lambda's CreateFunction wants LocalStack's init binary (from GitHub) and a
  runtime image (from a container registry). Neither is reachable, and neither
  is needed to create, configure, update and delete functions: a placeholder
  file stands in for the first, and the image pull, a private function of the
  pinned release, is made a no-op. Invoking is the emulator tests' job.

Each instance listens on its own free port with its own state folder, so
parallel test runs do not meet.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from pylambda_build import BuildError, cache_dir

VERSION = "2026.3.0"
# Beside localstack-core, the pins that make this release start: newer cbor2, pyOpenSSL
# (with the cryptography it needs) and service-identity break its imports.
REQUIREMENTS = (
    f"localstack-core[runtime]=={VERSION}",
    "cbor2==5.9.0",
    "pyopenssl==24.3.0",
    "cryptography==44.0.3",
    "service-identity==24.2.0",
)
INIT_RELEASE = "v0.1.41-pre"  # the init binary release the pinned version looks for
PYTHONS = ("3.13", "3.12")  # versions it is known to run on, preferred first

# Run by LocalStack's interpreter: turn the runtime image pull into a no-op, then start as its CLI would.
_LAUNCH = """
from localstack.services.lambda_.invocation import docker_runtime_executor
docker_runtime_executor._ensure_runtime_image_present = lambda image, platform: None
from localstack.runtime.main import main
main()
"""


def find_python() -> Path | None:
    """A Python LocalStack runs on: one of pyenv's builds, else python3.13/3.12 on PATH (one that starts)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [build for version in PYTHONS for build in sorted(pyenv.glob(f"{version}.*/bin/python{version}"))]
    candidates += [Path(found) for version in PYTHONS if (found := shutil.which(f"python{version}"))]
    for candidate in candidates:
        # A pyenv shim on PATH names a version it may not be set to run: ask it.
        probe = subprocess.run([candidate, "-c", "import venv"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return None


def ensure_installed(python: Path) -> Path:
    """LocalStack's interpreter, in a virtual environment made once per pinned requirement list.

    A lock on the cache keeps two test runs on one machine from installing into the same folder at once.
    """
    venv = cache_dir() / f"localstack-{VERSION}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"localstack-{VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(python, venv)


def _install(python: Path, venv: Path) -> Path:
    stamp = venv / "pylambda-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    print(f"localstack: installing localstack-core {VERSION} into {venv} (once)", file=sys.stderr)
    # --no-compile: byte-compiling all ~115 packages up front took longer (about 35 s here) than
    # compiling, on first start, the part LocalStack imports (about 11 s).
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    steps = [[str(python), "-m", "venv", str(venv)], [*pip, "--disable-pip-version-check", *REQUIREMENTS]]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise BuildError(f"installing LocalStack failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    stamp.write_text(wanted)
    return venv / "bin" / "python"


class LocalStack:
    """One LocalStack process on a free loopback port; a context manager that stops it on exit."""

    def __init__(self, python: Path, state: Path) -> None:
        self.python = python
        self.state = state
        self.port = _free_port()
        self.endpoint = f"http://localhost:{self.port}"
        self.log = state / "localstack.log"
        self._process: subprocess.Popen[bytes] | None = None

    def client_env(self, region: str = "us-east-1") -> dict[str, str]:
        """The caller's environment pointed at this LocalStack, with test credentials and no profile or config."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION=region,
            AWS_REGION=region,
            AWS_CONFIG_FILE=str(self.state / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.state / "no-aws-credentials"),
            SAM_CLI_TELEMETRY="0",
        )
        return env

    def __enter__(self) -> LocalStack:
        root = self.state / "filesystem"
        init = root / "var/lib/localstack/lib/lambda-runtime" / INIT_RELEASE / "x86_64/var/rapid/init"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text("#!/bin/sh\necho 'placeholder: functions are not invoked in LocalStack here' >&2\nexit 1\n")
        init.chmod(0o755)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.state),
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(root),
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "LOCALSTACK_HOST": f"localhost:{self.port}",  # the host in content URLs: one that resolves offline
            "LOCALSTACK_TELEMETRY_DISABLED": "1",
            "DISABLE_EVENTS": "1",
            "DNS_ADDRESS": "0",  # no DNS server: nothing here resolves through it
            "TMPDIR": str(self.state),
        }
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.python), "-c", _LAUNCH],
                env=env,
                cwd=self.state,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to its process group: its state is scratch, so a slow shutdown buys nothing."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BuildError(f"LocalStack exited with {self._process.returncode}:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_localstack/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise BuildError(f"LocalStack was not ready after {timeout:.0f} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
