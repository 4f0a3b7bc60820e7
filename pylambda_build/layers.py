"""The layer, dependency layers and functions as Lambda unpacks them: what every pylambda command builds on.

A layer is a folder laid out as /opt (``bootstrap``, ``pylambda/runtime``, the
bundled interpreter in ``pylambda/python3.X``); a function is its folder's
files; zips of either are reproducible (same sources, same bytes).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from . import SOURCES, BuildError, __version__, cache_dir, deps, interpreter
from .vendoring import vendor, vendored_packages

RUNTIME_SOURCE = SOURCES / "layer"
PINS = SOURCES / "interpreters.json"
PROVIDED_AL2023_GLIBC = (2, 34)  # Amazon Linux 2023's glibc: the newest symbol version a layer may need

# Zip entries carry this date so that the same sources give the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class LayerSpec:
    """Which interpreter goes into the layer: ``python`` is 'none', a version, 'default' or a path."""

    def __init__(
        self,
        python: str = "none",
        arch: str = "x86_64",
        pins: Path = PINS,
        *,
        target_glibc: tuple[int, ...] = PROVIDED_AL2023_GLIBC,
        allow_newer_glibc: bool = False,
        compile_with: Path | None = None,
    ) -> None:
        self.python = python
        self.arch = arch
        self.pins = pins
        self.target_glibc = target_glibc
        self.allow_newer_glibc = allow_newer_glibc
        self.compile_with = compile_with

    def interpreter_source(self) -> Path:
        """The tarball or directory to bundle: a pinned download (cached) or the user's own (``inputs`` checked it)."""
        if re.fullmatch(r"3\.\d+|default", self.python):
            pin = interpreter.find_pin(self.pins, self.python, self.arch)
            try:
                return interpreter.download(pin, cache_dir() / "python")
            except interpreter.DownloadError as exc:
                raise BuildError(
                    f"{exc}: without a download, build with --python none (no interpreter in the layer:"
                    " python3 from PATH runs the runtime) or --python TARBALL (a python-build-standalone"
                    " tarball you have)"
                ) from None
        return Path(self.python)

    def deps_target(self, scratch: Path, layer: Path | None = None) -> deps.Target:
        """What a dependency layer's wheels must fit: the Python this spec bundles, or python3 on PATH for 'none'.

        The interpreter is taken from ``layer`` when that layer was built from
        this spec, else unpacked into ``scratch``; it byte-compiles the layer.
        """
        if self.python == "none":
            python3 = shutil.which("python3")
            if python3 is None:
                raise BuildError("--python none: there is no python3 on PATH to build dependencies for")
            return deps.probe(Path(python3), self.arch)
        bundled = sorted(layer.glob("pylambda/python3.*")) if layer is not None else []
        python = bundled[-1] if bundled else interpreter.install(self.interpreter_source(), scratch, self.arch)
        executable = python / "bin" / "python3"
        try:
            return deps.probe(executable, self.arch)
        except BuildError:  # another architecture's interpreter: the version from its layout, and no compiling
            version = python.name.removeprefix("python")
            abiflags = "t" if (python / "lib" / f"python{version}t").is_dir() else ""
            return deps.Target(version, abiflags, self.arch, None, python.name)


def build_layer(into: Path, spec: LayerSpec) -> None:
    """Lay out the layer's files in ``into``: what Lambda unpacks into /opt."""
    vendored = vendor()
    into.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCES / "bootstrap", into / "bootstrap")
    (into / "bootstrap").chmod(0o755)
    runtime = into / "pylambda" / "runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    for source in _source_files(RUNTIME_SOURCE):
        relative = source.relative_to(RUNTIME_SOURCE)
        if relative.parts[:2] == ("pylambda", "_vendor") and relative != Path("pylambda/_vendor/__init__.py"):
            continue  # the pins, their stamps and the unpacked packages: copied below from where vendor() put them
        _copy(source, runtime / relative)
    for pin in vendored_packages():
        if pin.top_level:  # beside the runtime, after user code and dependency layers on sys.path
            _copy(pin.unpacked(vendored), runtime / pin.unpacked(vendored).name)
            continue
        for source in _source_files(vendored / pin.name):
            _copy(source, runtime / "pylambda" / "_vendor" / pin.name / source.relative_to(vendored / pin.name))
    (into / "pylambda" / "VERSION").write_text(f"{__version__}\n")  # which pylambda built this layer
    licenses = into / "pylambda" / "licenses"
    shutil.rmtree(licenses, ignore_errors=True)
    licenses.mkdir()
    shutil.copyfile(SOURCES / "LICENSE", licenses / "pylambda.txt")
    shutil.copyfile(vendored / "urllib3" / "LICENSE.txt", licenses / "urllib3.txt")
    # Its wheel declares Apache-2.0 and ships an empty license file: the license it names, with a word on why.
    snapshot = "snapshot_restore_py (bundled for SnapStart) is licensed under the Apache License 2.0, as its package"
    snapshot += " metadata declares; the text of that license follows.\n\n"
    (licenses / "snapshot_restore_py.txt").write_text(snapshot + (SOURCES / "LICENSE").read_text())
    if spec.python == "none":
        return
    python = interpreter.install(spec.interpreter_source(), into, spec.arch)
    cpython_license = python / "lib" / python.name / "LICENSE.txt"
    if cpython_license.exists():
        shutil.copyfile(cpython_license, licenses / "cpython.txt")
    try:
        glibc = interpreter.check_glibc(python, spec.target_glibc, allow_newer=spec.allow_newer_glibc)
        print(glibc, file=sys.stderr)
        print(f"system     needs {', '.join(interpreter.system_libraries(python))}", file=sys.stderr)
        minor = python.name.removeprefix("python")
        with interpreter.compiler(python, spec.arch, spec.pins, spec.compile_with) as (compiler, name):
            interpreter.byte_compile(compiler, name, minor, python / "lib", runtime)
    except BuildError:
        shutil.rmtree(python)  # no layer that would fail at its first cold start
        raise


def rebuild_layer(into: Path, spec: LayerSpec) -> None:
    """``build_layer`` into a build folder of pylambda's own, emptied first: nothing of an earlier build (another
    interpreter, say) stays behind."""
    shutil.rmtree(into, ignore_errors=True)
    build_layer(into, spec)


def package_function(source: Path, into: Path) -> None:
    """Copy a function's folder into ``into``, as its zip carries it: without its requirements, tests or caches.

    The requirements become a dependency layer instead (``deps``), shared by
    the functions that attach it.
    """
    into.mkdir(parents=True, exist_ok=True)
    for path in _source_files(source):
        if path.relative_to(source) != Path("requirements.txt"):
            _copy(path, into / path.relative_to(source))


def build_deps(requirements: Path, into: Path, spec: LayerSpec, layer: Path | None = None) -> None:
    """Write a dependency layer for ``requirements`` into ``into``, for the Python and arch of ``spec``."""
    with tempfile.TemporaryDirectory(prefix="pylambda-deps-") as scratch:
        target = spec.deps_target(Path(scratch), layer)
        site = deps.build(requirements, into, target, glibc=spec.target_glibc, allow_newer_glibc=spec.allow_newer_glibc)
    print(f"deps       {site}  {deps.size(into / 'python') / 1e6:.2f} MB unzipped", file=sys.stderr)


def cached_deps(requirements: Path, into: Path, spec: LayerSpec, layer: Path) -> None:
    """``build_deps`` into ``into`` and its zip beside it, reused while the requirements, target and code are the same.

    The default build and ``invoke`` build every function's dependency layer;
    without this each run would ask the index, reinstall and rezip (seconds,
    where the rest of the build takes a fraction of one). ``deps`` (what
    `sam build` runs) always resolves afresh.
    """
    with tempfile.TemporaryDirectory(prefix="pylambda-deps-") as scratch:
        target = spec.deps_target(Path(scratch), layer)
    key = hashlib.sha256()
    for part in (requirements.read_bytes(), Path(deps.__file__).read_bytes(), Path(__file__).read_bytes()):
        key.update(hashlib.sha256(part).digest())
    key.update(repr((target.version, target.abiflags, target.arch, target.identity, spec.target_glibc)).encode())
    digest = key.hexdigest()[:32]
    zipped, stamp = into.with_suffix(".zip"), into.with_suffix(".key")
    if into.is_dir() and zipped.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    cached = cache_dir() / "deps" / digest
    if not (cached / "layer.zip").exists():
        shutil.rmtree(cached, ignore_errors=True)
        deps.build(
            requirements, cached / "layer", target, glibc=spec.target_glibc, allow_newer_glibc=spec.allow_newer_glibc
        )
        write_zip(cached / "layer", cached / "layer.zip")  # written last: an entry without it is partial
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(cached / "layer", into)
    shutil.copyfile(cached / "layer.zip", zipped)
    stamp.write_text(digest)


def with_dependencies(layer: Path, requirements: Path | None, deps_dir: Path, spec: LayerSpec, opt: Path) -> Path:
    """The runtime layer alone, or with the dependency layer of ``requirements`` (built into ``deps_dir``, cached)
    unpacked over it into ``opt``: both in one folder, as Lambda unpacks a function's layers into /opt."""
    if requirements is None:
        return layer
    cached_deps(requirements, deps_dir, spec, layer)
    return merge_layers([layer, deps_dir], opt)


def merge_layers(layers: list[Path], opt: Path) -> Path:
    """Unpack layers into one folder, in order, as Lambda does into /opt; returns the folder."""
    for layer in layers:
        shutil.copytree(layer, opt, dirs_exist_ok=True)
    return opt


def write_zip(directory: Path, zip_path: Path) -> None:
    """Zip a directory reproducibly: sorted entries, fixed dates, only the exec bit kept from modes."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_dir():
                continue
            entry = zipfile.ZipInfo(path.relative_to(directory).as_posix(), ZIP_EPOCH)
            entry.create_system = 3  # Unix, so that Lambda honours the mode bits
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            entry.external_attr = (stat.S_IFREG | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes(), compresslevel=9)
    partial.replace(zip_path)


def _source_files(directory: Path) -> Iterator[Path]:
    """Files under ``directory``, without caches or tests."""
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if path.is_file() and not any(p in ("__pycache__", "tests") or p.startswith(".") for p in parts):
            yield path


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o644)


def size_of(path: Path) -> str:
    total = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return f"{total / 1e6:.2f} MB"


def bundled_python(layer: Path) -> str:
    """The minor version of the interpreter in a built layer ('3.14'), or 'none' for a layer without one."""
    found = sorted(path.name.removeprefix("python") for path in (layer / "pylambda").glob("python3.*"))
    return found[-1] if found else "none"
