"""The ``pylambda`` command (and build.py, its entry in a clone): the layer builder, the emulator driver, and helpers.

The runtime it builds layers from (``bootstrap``, ``layer/``, ``interpreters.json``)
sits beside this package in a clone of the repository; the wheel carries the
same files inside it, under ``sources/``, so an installed ``pylambda`` needs no clone.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

# The one place the version is written: pyproject.toml reads it from here (hatch), layers record it.
__version__ = "0.1.0"

PACKAGE = Path(__file__).resolve().parent
# A clone: the repository's top level, with its example functions; None when installed from the wheel.
CLONE: Path | None = PACKAGE.parent if (PACKAGE.parent / "layer" / "pylambda").is_dir() else None
SOURCES = CLONE or PACKAGE / "sources"


class BuildError(Exception):
    """A build step failed for a reason the user can act on."""


class UsageError(BuildError):
    """An argument or input file that cannot work: exit status 2, as argparse gives, before anything is built."""


def read_input(what: str, path: Path, fix: str, missing_fix: str | None = None) -> str:
    """The text of an input file the user named, or a UsageError: ``<what> <path> does not exist: <fix>``, and so on."""
    try:
        return path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist: {missing_fix or fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"{what} {path} cannot be read ({reason}): {fix}") from None


def cache_dir() -> Path:
    """Where downloads are kept between builds; ``PYLAMBDA_CACHE`` overrides it."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pylambda"
    return Path(os.environ.get("PYLAMBDA_CACHE", default))


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in pieces: interpreter tarballs are tens of megabytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def readable_by_all(root: Path) -> None:
    """Readable by every user, executable where it already was: Lambda may run the runtime as another user."""
    for path in [root, *root.rglob("*")]:
        executable = path.is_dir() or os.access(path, os.X_OK)
        path.chmod(0o755 if executable else 0o644)


def program() -> str:
    """The name messages start with: what the user typed (``pylambda`` or ``build.py``), else ``pylambda``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name in ("build.py", "pylambda") else "pylambda"
