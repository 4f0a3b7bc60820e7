"""``pylambda image``: a function as a container image on Lambda's OS-only base image.

The base image (``public.ecr.aws/lambda/provided:al2023`` by default) keeps its
entrypoint: ``/lambda-entrypoint.sh`` takes the handler as its one argument (the
image's CMD) and runs ``/var/runtime/bootstrap``, under the Runtime Interface
Emulator when ``AWS_LAMBDA_RUNTIME_API`` is unset, so that ``docker run -p
9000:8080 IMAGE`` answers invokes as AWS's own images do. The runtime layer and
the function's dependency layer go into ``/opt``, as Lambda unpacks the layers
of a zip function, and ``/var/runtime/bootstrap`` hands over to ``/opt/bootstrap``:
the runtime then finds everything where it does on Lambda.

The images carry no SnapStart label: the runtime follows SnapStart's lifecycle
(snapstart.py), which is what the label stands in for.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import BuildError, UsageError

DEFAULT_BASE = "public.ecr.aws/lambda/provided:al2023"
PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
# What `docker build -t` takes: [registry/]name[:tag], lower-case name components.
TAG = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?")

DOCKERFILE = """\
FROM {base}
# The runtime layer and the function's dependency layer, unpacked as Lambda unpacks layers: into /opt.
COPY opt/ /opt/
# The base image's entrypoint runs /var/runtime/bootstrap: this one hands over to the runtime layer's.
COPY bootstrap ${{LAMBDA_RUNTIME_DIR}}/bootstrap
COPY function/ ${{LAMBDA_TASK_ROOT}}/
CMD ["{handler}"]
"""
HANDOVER = '#!/bin/sh\nexec /opt/bootstrap "$@"\n'


def docker() -> str:
    """The Docker client, once its daemon has answered; a UsageError that says what is missing otherwise."""
    client = shutil.which("docker")
    if client is None:
        raise UsageError("image needs Docker, and there is no docker command here: install Docker, or build a zip")
    done = subprocess.run([client, "info"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"image needs Docker, and no Docker daemon answers ({_last_line(done.stderr)}): start it")
    return client


def check_base(client: str, base: str) -> None:
    """The base image, here already or pulled now: a build from a base that cannot be had is refused first."""
    inspect = [client, "image", "inspect", base]
    if subprocess.run(inspect, capture_output=True, text=True, check=False).returncode == 0:
        return
    pulled = subprocess.run([client, "pull", "--quiet", base], capture_output=True, text=True, check=False)
    if pulled.returncode != 0:
        raise UsageError(
            f"--base {base} is not here and cannot be pulled ({_last_line(pulled.stderr)}):"
            " pull or build it first, or give another --base"
        )


def write_context(into: Path, opt: Path, function: Path, base: str, handler: str) -> None:
    """The build context: the Dockerfile, the layers as /opt, the hand-over bootstrap and the function."""
    into.mkdir(parents=True, exist_ok=True)
    shutil.copytree(opt, into / "opt", symlinks=True)
    shutil.copytree(function, into / "function")
    (into / "bootstrap").write_text(HANDOVER)
    (into / "bootstrap").chmod(0o755)
    (into / "Dockerfile").write_text(DOCKERFILE.format(base=base, handler=handler))


def build(client: str, context: Path, tag: str, arch: str) -> None:
    """``docker build`` of ``context`` for ``arch``; its last error line if it fails."""
    command = [client, "build", "--platform", PLATFORMS[arch], "--tag", tag, str(context)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"docker build of {tag} failed: {_last_line(done.stderr or done.stdout)}")
    print(f"image      {tag}", file=sys.stderr)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
