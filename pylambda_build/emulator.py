"""The AWS Runtime Interface Emulator, driven from Python.

``build.py invoke`` and the integration tests both run functions through
this, so both exercise the runtime the way Lambda does: a real Runtime API in
front of the real bootstrap.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from . import BuildError

DEFAULT_HANDLER = "app.handler"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def find_emulator() -> Path:
    """The aws-lambda-rie binary: $PYLAMBDA_RIE, the installed aws-sam-cli's copy, or PATH."""
    if os.environ.get("PYLAMBDA_RIE"):
        return Path(os.environ["PYLAMBDA_RIE"])
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    spec = importlib.util.find_spec("samcli")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "local" / "rapid" / f"aws-lambda-rie-{arch}"
        if candidate.exists():
            return candidate
    on_path = shutil.which("aws-lambda-rie")
    if on_path:
        return Path(on_path)
    raise BuildError("no aws-lambda-rie: `pip install aws-sam-cli` (it ships the emulator) or set PYLAMBDA_RIE")


class InvokeResult:
    """What the emulator answered to one invoke."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> object:
        return json.loads(self.body)

    @property
    def failed(self) -> bool:
        """The emulator answers 200 either way; an error document is how a failure shows."""
        try:
            document = self.json()
        except ValueError:
            return False
        return isinstance(document, dict) and {"errorType", "errorMessage"} <= document.keys()


class Emulator:
    """The emulator running a bootstrap, on free loopback ports.

    ``env`` entries override the inherited environment; None removes a variable.
    ``user`` runs the emulator and runtime as that uid (and its gid), as
    Lambda's managed-instances mode does with a user that does not own the layer.
    ``args`` follow the bootstrap on its command line.

    ``max_concurrency`` starts the emulator in its managed-instances mode
    (Lambda Managed Instances): it then runs only ``/opt/bootstrap`` from
    ``/var/task``, as an unprivileged user, so the bootstrap's directory and the
    task root are bind-mounted there in a private mount namespace (root only;
    nothing on the host changes but an empty /var/task mount point).

    ``enter`` runs the emulator, and so the bootstrap and its interpreter,
    inside another file-system root: given the folders to mount at their own
    paths in it (the emulator's, the bootstrap's, the task root and
    ``binds``), it returns the command prefix that does so (the tests' Debian
    root of CPython 3.13 to 3.15, ``testkit.sid_root.entering``). (To run a
    program of the root's own, such as its python3.X, name it through a
    symlink in a folder of the host's.)

    ``layer_at_opt`` mounts the bootstrap's folder at /opt in a private mount
    namespace (root only) and runs /opt/bootstrap, as Lambda lays out a layer:
    the emulator then also starts the layer's external extensions, from
    /opt/extensions.
    """

    def __init__(
        self,
        bootstrap: Path,
        task_root: Path,
        handler: str = DEFAULT_HANDLER,
        *,
        env: Mapping[str, str | None] | None = None,
        timeout: int = 10,
        user: int | None = None,
        args: Sequence[str] = (),
        max_concurrency: int | None = None,
        enter: Callable[[list[Path]], list[str]] | None = None,
        binds: Sequence[Path] = (),
        layer_at_opt: bool = False,
    ) -> None:
        # Absolute, as the emulator runs from the task root; not resolved, as a venv's python is a symlink.
        self.bootstrap = Path(os.path.abspath(bootstrap))
        self.args = list(args)
        self.task_root = task_root.resolve()
        self.port = free_port()
        environ = dict(os.environ)
        environ.update(_HANDLER=handler, LAMBDA_TASK_ROOT=str(task_root), AWS_LAMBDA_FUNCTION_TIMEOUT=str(timeout))
        environ.setdefault("AWS_REGION", "us-east-1")
        environ.setdefault("AWS_DEFAULT_REGION", environ["AWS_REGION"])
        for key, value in (env or {}).items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        self.environ = environ
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self._process: subprocess.Popen[bytes] | None = None
        self.user = user
        self.max_concurrency = max_concurrency
        if max_concurrency is not None:
            self.environ["AWS_LAMBDA_MAX_CONCURRENCY"] = str(max_concurrency)
        self.enter = enter
        self.binds = list(binds)
        self.layer_at_opt = layer_at_opt

    def __enter__(self) -> Emulator:
        emulator = find_emulator()
        command = [
            str(emulator),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{free_port()}",
        ]
        if self.max_concurrency is None and self.layer_at_opt:
            mounts = 'mount --bind "$1" /opt && shift && exec "$@"'
            command = ["unshare", "--mount", "sh", "-c", mounts, "sh", str(self.bootstrap.parent), *command]
            command += ["/opt/bootstrap", *self.args]
        elif self.max_concurrency is None:
            command += [str(self.bootstrap), *self.args]
        else:  # the emulator finds /opt/bootstrap itself
            mounts = 'mount --bind "$1" /opt && mkdir -p /var/task && mount --bind "$2" /var/task'
            mounts += ' && shift 2 && exec "$@"'
            layer, task = str(self.bootstrap.parent), str(self.task_root)
            command = ["sh", "-c", mounts, "sh", layer, task, *command]
        if self.enter is not None:  # which gives a private mount namespace
            binds = [emulator.parent, self.bootstrap.parent, self.task_root, *self.binds]
            command = [*self.enter(binds), *command]
        elif self.max_concurrency is not None:
            command = ["unshare", "--mount", *command]
        self._process = subprocess.Popen(
            command,
            cwd=self.task_root,
            env=self.environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            user=self.user,
            group=self.user,
            extra_groups=None if self.user is None else [],
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.02)
        output = self.logs()
        self.__exit__()
        raise BuildError(f"the emulator did not start listening on port {self.port}:\n{output}")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def invoke(self, event: bytes | str, headers: Mapping[str, str] | None = None, timeout: float = 60) -> InvokeResult:
        """POST one event to the emulator's invoke endpoint and return its answer."""
        data = event.encode() if isinstance(event, str) else event
        # As the AWS SDKs send an event: managed-instances mode hands the handler any other type as bytes.
        fields = {"Content-Type": "application/json", **(headers or {})}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}", data=data, headers=fields, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return InvokeResult(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return InvokeResult(exc.code, dict(exc.headers), exc.read())

    def pid(self) -> int:
        """The emulator's own process: the runtime, and any workers it forks, are below it."""
        assert self._process is not None
        return self._process.pid

    def runtime_pid(self) -> int | None:
        """The process the emulator started for the runtime, if it is running."""
        assert self._process is not None
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self._process.pid:
                return int(stat.parent.name)
        return None

    def logs(self) -> str:
        """Everything the emulator and the runtime have written so far."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def wait_for_output(self, text: str, timeout: float = 5) -> str:
        """The logs once ``text`` shows in them: the emulator forwards output asynchronously."""
        deadline = time.monotonic() + timeout
        while text not in (logs := self.logs()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return logs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def function_logs(emulator_output: str) -> str:
    """The function's own lines, without the emulator's chatter about itself."""
    return "\n".join(line for line in emulator_output.splitlines() if "(rapid)" not in line)
