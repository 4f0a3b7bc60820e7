"""A stand-in for a python-build-standalone tarball, made from the interpreter running this code.

These machines cannot download interpreters, so the tests and benchmarks
bundle this instead. It is honest: the same layout as the real assets
(python/bin/python3.X with a python3 symlink, python/lib/python3.X, headers,
the Tk-facing modules and a corner of the test suite for the build to trim),
and the executable's absolute RUNPATH is rewritten to $ORIGIN/../lib, as in
the real builds, so the bundled copy cannot lean on the original install.
"""

from __future__ import annotations

import sys
import sysconfig
import tarfile
from pathlib import Path


def make_tarball(directory: Path) -> Path:
    """Write ``cpython-3.X-standin-install_only.tar.gz`` into ``directory`` and return its path."""
    base = Path(sys.base_prefix)
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    binary = (base / "bin" / f"python{minor}").resolve().read_bytes()
    runpath = f"{base / 'lib'}\0".encode()
    if runpath in binary:
        binary = binary.replace(runpath, b"$ORIGIN/../lib\0".ljust(len(runpath), b"\0"))

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if {"site-packages", "__pycache__"} & set(parts):
            return None
        # A corner of the test suite is enough to show that it gets trimmed.
        if "test" in parts[3:5] and not info.name.endswith(("test", "test/__init__.py", "test/support")):
            return None
        return info

    tarball = directory / f"cpython-{minor}-standin-install_only.tar.gz"
    scratch = directory / "python"
    (scratch / "bin").mkdir(parents=True)
    (scratch / "bin" / f"python{minor}").write_bytes(binary)
    (scratch / "bin" / f"python{minor}").chmod(0o755)
    (scratch / "bin" / "python3").symlink_to(f"python{minor}")
    (scratch / "include").mkdir()
    (scratch / "include" / "Python.h").write_text("/* headers are not shipped in the layer */\n")
    with tarfile.open(tarball, "w:gz", compresslevel=1) as archive:
        archive.add(scratch, "python")
        archive.add(stdlib, f"python/lib/python{minor}", filter=keep)
        for library in (base / "lib").glob("libpython*"):
            archive.add(library, f"python/lib/{library.name}")
    return tarball
