"""Bundling a CPython interpreter into the layer.

``provided.al2023`` ships no Python, so the layer carries one: a relocatable
build from python-build-standalone (the builds uv uses), pinned by URL and
sha256 in ``interpreters.json``. It lands in ``pylambda/python3.X/`` inside
the layer (never ``/opt/python``, where users' dependency layers live; and a
per-version name, so two of our layers side by side do not mix their
standard libraries), trimmed of what a Lambda function cannot use, with
no symlinks (SAM's zipper would store each as a full copy) and with every
file readable by the unprivileged user Lambda may run the runtime as.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from . import BuildError, UsageError, cache_dir, elf, file_sha256, read_input, readable_by_all

# Lambda architecture name -> (python-build-standalone triple, ELF e_machine).
TRIPLES = {"x86_64": ("x86_64-unknown-linux-gnu", 62), "arm64": ("aarch64-unknown-linux-gnu", 183)}

# Directory names under lib/pythonX.Y that a function never needs.
STDLIB_DEAD_WEIGHT = {
    "test",
    "tests",
    "idle_test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "__phello__",
    "site-packages",
    "__pycache__",
}
STDLIB_DEAD_FILES = ("turtle.py",)
# Extension modules that exist only for CPython's own test suite, or need Tk.
DYNLOAD_DEAD_WEIGHT = re.compile(r"^(_test|_xxtest|xxlimited|_ctypes_test|_tkinter|xxsubtype)")


class Pin:
    """One downloadable interpreter: where it is and what its bytes must hash to."""

    def __init__(self, python: str, arch: str, version: str, url: str, sha256: str) -> None:
        self.python = python
        self.arch = arch
        self.version = version
        self.url = url
        self.sha256 = sha256

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1].replace("%2B", "+")


PIN_FIELDS = ("python", "arch", "version", "url", "sha256")


def load_pins(path: Path) -> tuple[str, list[Pin]]:
    """The default minor version and every pin in a pin table; a table that is not one is a UsageError."""
    fix = "fix it, or leave --pins out to use interpreters.json"
    text = read_input("--pins", path, fix)
    try:
        table = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--pins {path} is not JSON (line {exc.lineno}: {exc.msg}): {fix}") from None
    entries = table.get("interpreters") if isinstance(table, dict) else None
    if not isinstance(table, dict) or not isinstance(table.get("default"), str) or not isinstance(entries, list):
        raise UsageError(f'--pins {path} is not a pin table ("default" and an "interpreters" list): {fix}')
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or any(not isinstance(entry.get(field), str) for field in PIN_FIELDS):
            raise UsageError(f"--pins {path}: interpreter {number} lacks one of {', '.join(PIN_FIELDS)}: {fix}")
    return table["default"], [Pin(**{field: entry[field] for field in PIN_FIELDS}) for entry in entries]


def find_pin(path: Path, python: str, arch: str) -> Pin:
    """The pin for a minor version ('3.14') or 'default', on an architecture."""
    default, pins = load_pins(path)
    wanted = default if python == "default" else python
    for pin in pins:
        if pin.python == wanted and pin.arch == arch:
            return pin
    known = ", ".join(sorted({p.python for p in pins if p.arch == arch})) or "none"
    raise UsageError(f"no Python {wanted} for {arch} is pinned in {path} (pinned: {known})")


class DownloadError(BuildError):
    """The pinned interpreter could not be fetched: no network, a proxy, a moved release."""


def download(pin: Pin, cache: Path) -> Path:
    """The pinned tarball from the cache, or downloaded into it and checked against its sha256.

    The download goes to a temporary name and is renamed only once its hash
    matches, so an interrupted or tampered download never sits in the cache.
    """
    target = cache / pin.filename
    if target.exists() and file_sha256(target) == pin.sha256:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, prefix=".download-", delete=False) as partial:
        try:
            _fetch(pin.url, partial)
            partial.close()
            actual = file_sha256(Path(partial.name))
            if actual != pin.sha256:
                raise BuildError(
                    f"{pin.url}: sha256 mismatch (expected {pin.sha256}, got {actual}); nothing was installed"
                )
            os.replace(partial.name, target)
        finally:
            if os.path.exists(partial.name):
                os.unlink(partial.name)
    return target


def _fetch(url: str, out: IO[bytes]) -> None:
    """Copy ``url`` into ``out``, with a progress line when stderr is a terminal."""
    show = sys.stderr.isatty()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if show:
                    of = f" of {total / 1e6:.1f}" if total else ""
                    sys.stderr.write(f"\rdownloading {url.rsplit('/', 1)[1]}: {done / 1e6:.1f}{of} MB")
    except OSError as exc:
        raise DownloadError(f"could not download {url}: {exc}") from None
    if show:
        sys.stderr.write("\n")


def install(source: Path, layer_root: Path, arch: str) -> Path:
    """Unpack a python-build-standalone tarball or directory into the layer; return its directory."""
    with tempfile.TemporaryDirectory() as scratch:
        if source.is_dir():
            python = source / "python" if (source / "python").is_dir() else source
            unpacked = Path(scratch) / "python"
            shutil.copytree(python, unpacked, symlinks=True)
        elif tarfile.is_tarfile(source):
            try:
                with tarfile.open(source) as archive:
                    _extract(archive, scratch, source)
            except (tarfile.TarError, EOFError, zlib.error) as exc:  # truncated or corrupt
                raise BuildError(f"cannot unpack {source}: {exc}") from None
            unpacked = Path(scratch) / "python"
        else:
            raise BuildError(f"{source} is neither a directory nor a tarball")
        minor = _minor_version(unpacked, source)
        _trim(unpacked, minor)
        _check_arch(unpacked / "bin" / "python3", arch)
        _resolve_symlinks(unpacked)
        readable_by_all(unpacked)
        target = layer_root / "pylambda" / f"python{minor}"
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(unpacked, target)
    return target


def _extract(archive: tarfile.TarFile, into: str, source: Path) -> None:
    """Unpack without letting a member land or point outside ``into`` (absolute paths or links, ``..``, devices)."""
    if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later do the checking themselves
        try:
            archive.extractall(into, filter="data")
        except tarfile.FilterError as exc:
            raise BuildError(f"refusing to unpack {source}: {exc}") from None
        return
    root = os.path.realpath(into)
    for member in archive.getmembers():
        target = os.path.realpath(os.path.join(into, member.name))
        link = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname)) if member.issym() else target
        if not (member.isfile() or member.isdir() or member.issym()) or not all(
            path == root or path.startswith(root + os.sep) for path in (target, link)
        ):
            raise BuildError(f"refusing to unpack {source}: {member.name!r} would land outside the interpreter")
    archive.extractall(into)


def _minor_version(python: Path, source: Path) -> str:
    """'3.14' from the lib/python3.14 directory, which every layout has; free-threaded builds are refused.

    A free-threaded build keeps its standard library in lib/python3.14t and
    runs as bin/python3.14t. Bundling it like a regular build once gave a layer
    without a standard library, which died at its first cold start; until the
    layer supports it end to end, it is refused here.
    """
    found = sorted(
        m.groups() for d in (python / "lib").glob("python3.*") if (m := re.fullmatch(r"python(3\.\d+)(t?)", d.name))
    )
    if len(found) != 1 or not (python / "bin").is_dir():
        raise BuildError(f"{source}: not laid out like python-build-standalone (bin/, lib/python3.X/)")
    minor, free_threaded = found[0]
    if free_threaded or (python / "bin" / f"python{minor}t").exists():
        raise BuildError(
            f"{source} is a free-threaded build of Python {minor} (python{minor}t), which pylambda does not bundle:"
            f" use the regular build (--python {minor})"
        )
    return minor


def _trim(python: Path, minor: str) -> None:
    """Remove what a function cannot use: tools, headers, Tk, test suites, the static library."""
    executable = python / "bin" / f"python{minor}"
    if not executable.exists():
        raise BuildError(f"{python}: no bin/python{minor}")
    # One interpreter, under the name the bootstrap runs.
    os.replace(executable.resolve(), python / "python3.tmp")
    shutil.rmtree(python / "bin")
    (python / "bin").mkdir()
    os.replace(python / "python3.tmp", python / "bin" / "python3")
    for name in ("include", "share"):
        shutil.rmtree(python / name, ignore_errors=True)
    # libpython stays even when the executable links it statically (python-build-standalone does since
    # 2025): extension modules in users' wheels that link against it find it through the executable's
    # DT_RPATH $ORIGIN/../lib, and provided.al2023 has no libpython of its own. Its link-time name
    # (libpython3.X.so) is only for compilers.
    needed = elf.dependencies(python / "bin" / "python3")[0] | {f"libpython{minor}.so.1.0", "libpython3.so"}
    for entry in (python / "lib").iterdir():
        keep = entry.name == f"python{minor}" or entry.name in needed
        if not keep:
            _remove(entry)
    stdlib = python / "lib" / f"python{minor}"
    for path in sorted(stdlib.rglob("*"), reverse=True):
        dead_dir = path.is_dir() and (path.name in STDLIB_DEAD_WEIGHT or path.name.startswith("config-"))
        dead_file = path.parent == stdlib and path.name in STDLIB_DEAD_FILES
        dead_ext = path.parent.name == "lib-dynload" and DYNLOAD_DEAD_WEIGHT.match(path.name)
        if dead_dir or dead_file or dead_ext:
            _remove(path)


def _check_arch(executable: Path, arch: str) -> None:
    """Refuse an interpreter built for another machine than the functions run on."""
    machine = elf.machine(executable)
    if machine != TRIPLES[arch][1]:
        found = next((name for name, (_, m) in TRIPLES.items() if m == machine), f"ELF machine {machine}")
        raise BuildError(f"the interpreter is built for {found}, but the layer is for {arch} (--arch)")


def _resolve_symlinks(python: Path) -> None:
    """Replace symlinks with what they point to; drop those that point nowhere; refuse those that point outside."""
    for path in sorted(python.rglob("*")):
        if not path.is_symlink():
            continue
        target = path.resolve()
        if not target.is_relative_to(python.resolve()):
            where = path.relative_to(python.parent)
            raise BuildError(f"{where} points outside the interpreter (to {os.readlink(path)}): refusing to bundle it")
        path.unlink()
        if target.is_file():
            shutil.copy2(target, path)
        elif target.is_dir():
            shutil.copytree(target, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_glibc(python_dir: Path, target: tuple[int, ...], *, allow_newer: bool) -> str:
    """Find the newest glibc any ELF file of the interpreter needs; refuse one newer than ``target``.

    Returns the line for the build summary. python-build-standalone builds
    need glibc 2.17; an interpreter built on a newer system (the tests'
    stand-in is one) may need more than Lambda's, and would fail at start
    there with a loader error nobody sees until deploy.
    """
    newest, culprit = newest_glibc(python_dir)
    if culprit is None:
        return "glibc      the interpreter needs no glibc symbol versions"
    where = culprit.relative_to(python_dir.parent.parent)
    line = f"glibc      needs {_dotted(newest)} (newest: {where}); the target has {_dotted(target)}"
    if newest > target and not allow_newer:
        raise BuildError(
            f"the interpreter needs glibc {_dotted(newest)} ({where}), newer than the target's {_dotted(target)}"
            " (provided.al2023 has 2.34): it would fail to start on Lambda. Use a python-build-standalone build,"
            " or pass --allow-newer-glibc if the layer is only for a newer system"
        )
    return line + (" (allowed by --allow-newer-glibc)" if newest > target else "")


def system_libraries(python_dir: Path) -> list[str]:
    """The shared libraries the interpreter's ELF files need that it does not ship: what the target must have.

    For python-build-standalone that is glibc's own libraries and
    libgcc_s.so.1; an interpreter built elsewhere may need more (Debian's
    needs libz and libexpat), which the build summary then shows.
    """
    shipped, needed = set(), set()
    for path in python_dir.rglob("*"):
        if path.is_file() and not path.is_symlink() and elf.is_elf(path):
            shipped.add(path.name)
            needed |= elf.dependencies(path)[0]
    return sorted(needed - shipped)


def newest_glibc(directory: Path) -> tuple[tuple[int, ...], Path | None]:
    """The newest glibc symbol version any ELF file under ``directory`` needs, and the first file needing it."""
    newest: tuple[int, ...] = ()
    culprit = None
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and elf.is_elf(path):
            needed = elf.glibc_needed(path)
            if needed is not None and needed > newest:
                newest, culprit = needed, path
    return newest, culprit


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def host_arch() -> str | None:
    """This machine's architecture in Lambda's terms, or None if Lambda has no such architecture."""
    machine = platform.machine()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine.lower())


@contextmanager
def compiler(python_dir: Path, arch: str, pins: Path, compile_with: Path | None = None) -> Iterator[tuple[Path, str]]:
    """A python3 that runs on this machine and compiles for the bundled interpreter's version, and its name.

    On the layer's own architecture that is the bundled interpreter itself,
    which must start here. A .pyc depends on the Python version (its magic
    number), not on the CPU, so a layer for another architecture is compiled
    by an interpreter of the same X.Y: ``compile_with`` if given, else this
    machine's pinned build of that version, downloaded and verified like the
    layer's own.
    """
    minor = python_dir.name.removeprefix("python")
    host = host_arch()
    if host == arch:
        yield python_dir / "bin" / "python3", f"the bundled Python {minor}"
    elif compile_with is not None:
        yield compile_with, f"--compile-with {compile_with}"
    else:
        if host is None:
            raise BuildError(
                f"this machine ({platform.machine()}) has no pinned Python {minor} to byte-compile the {arch} layer"
                f" with: pass --compile-with PATH, a python{minor} that runs here"
            )
        try:
            pin = find_pin(pins, minor, host)
            tarball = download(pin, cache_dir() / "python")
        except BuildError as exc:
            raise BuildError(
                f"byte-compiling the {arch} layer needs a Python {minor} that runs here ({exc});"
                f" or pass --compile-with PATH, a python{minor} that runs here"
            ) from None
        with tempfile.TemporaryDirectory() as scratch:
            yield install(tarball, Path(scratch), host) / "bin" / "python3", f"this machine's Python {minor} ({host})"


def byte_compile(compiler: Path, name: str, minor: str, *directories: Path) -> None:
    """Compile every .py under ``directories`` with ``compiler`` (``name`` in messages), a working Python ``minor``.

    Unchecked-hash pycs are used as they are, without comparing them with the
    source's mtime or hash: the right choice for code on Lambda's read-only
    /opt, where a stale pyc could not be rewritten anyway, and they stay valid
    after zip extraction changes every mtime. An interpreter that cannot do
    this here would not start on Lambda either: the build stops.
    """
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        started = subprocess.run([compiler, "-c", probe], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"{name} cannot start here: {exc.strerror}") from None
    if started.returncode != 0:
        raise BuildError(f"{name} cannot start here: {_gist(started.stderr)}")
    if started.stdout.strip() != minor:
        raise BuildError(f"{name} is Python {started.stdout.strip()}: it cannot byte-compile for Python {minor}")
    command = [str(compiler), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    # A fixed hash seed keeps the order of frozenset constants, and so the pyc bytes, reproducible.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run([*command, *map(str, directories)], capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise BuildError(f"byte-compiling the layer with {name} failed: {_gist(done.stdout + done.stderr)}")


def _gist(output: str) -> str:
    """The first line of an error output (or its fatal error), and the exception line after it: one line to read."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return "no output"
    first = next((line for line in lines if line.startswith("Fatal Python error: ")), lines[0])
    error = next((line for line in lines[lines.index(first) + 1 :] if re.match(r"\w+(Error|Exception): ", line)), None)
    return first if error is None else f"{first} ({error})"


def compile_tree(python: Path, directories: Sequence[Path]) -> bool:
    """Byte-compile ``directories`` with ``python`` (a dependency layer's target Python) as ``byte_compile`` does.

    False, with nothing compiled, if that interpreter cannot run here (it is built for another architecture).
    """
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        started = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    byte_compile(python, str(python), started.stdout.strip(), *directories)
    return True
