"""awslambdaric, the official Python runtime client, laid out to run beside pylambda.

The benchmarks and the tests that compare behaviour run it as
``python -m awslambdaric module.handler`` on the same interpreter as
pylambda, with only its own packages on PYTHONPATH: ``packages`` copies them out
of the environment that has it installed (requirements-dev.txt), for this
machine's Python; ``packages_for`` installs its wheels for another CPython
version (it has compiled parts), as pip does for a function.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from pylambda_build import readable_by_all

PACKAGES = ("awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py")
# awslambdaric on a pylambda layer's interpreter, with only its own packages on the path.
BOOTSTRAP = """#!/bin/sh
root=${0%/*}
for python in "$root"/pylambda/python3.*/bin/python3; do :; done
PYTHONPATH=$root/awslambdaric exec "$python" -m awslambdaric "$_HANDLER"
"""


def packages(into: Path) -> Path:
    """Copy awslambdaric and what it imports into ``into``, readable by every user; return ``into``."""
    spec = importlib.util.find_spec("awslambdaric")
    if spec is None or spec.origin is None:
        raise RuntimeError("awslambdaric is not installed here: pip install -r requirements-dev.txt")
    site = Path(spec.origin).parent.parent
    into.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        for path in site.glob(f"{name}*"):
            if path.name.endswith(".dist-info"):
                continue
            if path.is_dir():
                shutil.copytree(path, into / path.name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, into / path.name)
    readable_by_all(into)
    return into


def packages_for(version: str, into: Path) -> Path:
    """awslambdaric, at the version installed here, with its dependencies for CPython ``version``, in ``into``."""
    pin = f"awslambdaric=={importlib.metadata.version('awslambdaric')}"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"]
    command += ["--python-version", version, "--implementation", "cp", "--target", str(into), pin]
    subprocess.run(command, check=True, capture_output=True)
    readable_by_all(into)
    return into


def layer(pylambda_layer: Path, into: Path) -> Path:
    """A copy of a pylambda layer (with its bundled interpreter) whose bootstrap runs awslambdaric instead.

    What the emulator's managed-instances mode needs to run the official
    client as it runs pylambda: a layer at /opt with a bootstrap.
    """
    shutil.copytree(pylambda_layer, into)
    (into / "bootstrap").write_text(BOOTSTRAP)
    (into / "bootstrap").chmod(0o755)
    packages(into / "awslambdaric")
    return into
