"""``pylambda new DIR``: a starter project that `sam build`, `sam local invoke` and `sam deploy` take as written.

The files are in ``starter/`` beside this module, copied as they are: a SAM
template with the runtime layer and a dependency layer built by ``pylambda``
(``BuildMethod: makefile``), the Makefile, one function, its requirements, an
event and a README. The tests build, run and deploy a project made by this very command.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import PACKAGE

STARTER = PACKAGE / "starter"


def write(directory: Path) -> None:
    """Copy the starter into ``directory`` (``inputs`` made sure it is new or empty) and say what to run next."""
    shutil.copytree(STARTER, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    print(
        f"new        {directory}: template.yaml, Makefile, hello/app.py, requirements.txt, events/event.json",
        file=sys.stderr,
    )
    print(
        f"next       cd {directory} && sam build && sam local invoke HelloFunction --event events/event.json",
        file=sys.stderr,
    )
