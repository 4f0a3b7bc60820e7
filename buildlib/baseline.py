"""awslambdaric, the official Python runtime client, laid out to run beside pylambda.

The benchmarks and the tests that compare behaviour run it as
``python -m awslambdaric module.handler`` on the same interpreter as
pylambda, with only its own packages on PYTHONPATH: this copies them out of
the environment that has it installed (requirements-dev.txt).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from . import readable_by_all

PACKAGES = ("awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py")


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
