"""A dependency layer: the packages a function needs, as wheels for the Python and architecture the layer bundles.

A compiled wheel loads only on the CPython minor version (and ABI, ``t`` for
free-threaded builds) and the architecture it was built for, so the build
machine's own Python must not choose: pip is told the target's version, ABI
and every manylinux platform tag that provided.al2023's glibc can load, and
takes binary wheels only. Pure-Python packages that publish only an sdist are
built into a wheel first (on this machine: a pure wheel is the same everywhere)
and offered to pip from a local folder. A compiled package without a fitting
wheel stops the build in one line that says what the index does have, rather
than compiling it for the wrong machine or failing at import on Lambda.

The layer is laid out as the managed runtimes expect and as the runtime puts
on ``sys.path``: ``python/lib/python3.X/site-packages``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from . import BuildError, elf, program, readable_by_all
from .interpreter import TRIPLES, compile_tree, newest_glibc

# The oldest glibc each architecture has manylinux wheels for (manylinux1 is 2.5; aarch64 began with 2014's 2.17).
OLDEST_MANYLINUX = {"x86_64": 5, "arm64": 17}
# The legacy names of manylinux_2_5, 2_12 and 2_17, which older wheels still carry.
LEGACY_MANYLINUX = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}
PYPI_SIMPLE = "https://pypi.org/simple"
# Never loaded by a function: type stubs (console scripts in bin/ go too, as they name the build machine's Python).
DEAD_SUFFIXES = (".pyi",)
TEST_DIRS = ("tests", "test")


class Target:
    """What the wheels must fit: CPython ``version`` ('3.15'), ``abiflags`` ('' or 't'), ``arch``.

    ``python`` is an interpreter of that version that runs on this machine,
    used to byte-compile the layer; None when there is none (another arch).
    ``identity`` names the exact interpreter, for the build cache.
    """

    def __init__(self, version: str, abiflags: str, arch: str, python: Path | None, identity: str) -> None:
        self.version = version
        self.abiflags = abiflags
        self.arch = arch
        self.python = python
        self.identity = identity

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "") + self.abiflags

    def platforms(self, glibc: tuple[int, ...]) -> list[str]:
        """Every manylinux tag a system with ``glibc`` can load, newest first."""
        machine = TRIPLES[self.arch][0].split("-")[0]
        tags = []
        for minor in range(glibc[1], OLDEST_MANYLINUX[self.arch] - 1, -1):
            tags.append(f"manylinux_{glibc[0]}_{minor}_{machine}")
            if minor in LEGACY_MANYLINUX and (minor == 17 or self.arch == "x86_64"):
                tags.append(f"{LEGACY_MANYLINUX[minor]}_{machine}")
        return tags

    def describe(self, glibc: tuple[int, ...]) -> str:
        machine = TRIPLES[self.arch][0].split("-")[0]
        return (
            f"CPython {self.version}{self.abiflags} ({self.abi}) on manylinux {machine} with glibc <= {_dotted(glibc)}"
        )


def probe(python: Path, arch: str) -> Target:
    """The Target of an interpreter that runs here, asked from the interpreter itself."""
    code = (
        "import sys, sysconfig; print(f'{sys.version_info[0]}.{sys.version_info[1]}',"
        " 't' if sysconfig.get_config_var('Py_GIL_DISABLED') else '', sys.version.split()[0],"
        " sys.implementation.cache_tag)"
    )
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError(f"{python} cannot tell its version: {exc}") from None
    version, *rest = done.stdout.split()
    abiflags = rest[0] if len(rest) == 3 else ""
    return Target(version, abiflags, arch, python, " ".join(rest))


def site_packages(into: Path, target: Target) -> Path:
    """Where packages go: the runtime adds /opt/python/lib/python3.X/site-packages to sys.path."""
    return into / "python" / "lib" / f"python{target.version}" / "site-packages"


def build(
    requirements: Path, into: Path, target: Target, *, glibc: tuple[int, ...], allow_newer_glibc: bool = False
) -> Path:
    """Write the dependency layer for ``requirements`` into ``into``; return its site-packages folder."""
    if not requirements.is_file():
        raise BuildError(f"{requirements}: no such requirements file")
    shutil.rmtree(into / "python", ignore_errors=True)
    site = site_packages(into, target)
    site.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="pylambda-wheels-") as wheelhouse:
        _install(requirements, site, target, glibc, Path(wheelhouse))
    strip(site)
    check_binaries(site, target, glibc, allow_newer_glibc)
    readable_by_all(into / "python")
    if target.python is None or not compile_tree(target.python, [site]):
        print(
            f"{program()}: warning: no Python {target.version} runs on this machine, so the dependency layer is not"
            " byte-compiled; every cold start will compile what it imports",
            file=sys.stderr,
        )
    return site


def _install(requirements: Path, site: Path, target: Target, glibc: tuple[int, ...], wheelhouse: Path) -> None:
    """pip, binary wheels only, for the target; an sdist-only pure package is built into a wheel and retried."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-warn-conflicts"]
    command += ["--disable-pip-version-check", "--only-binary", ":all:", "--implementation", "cp"]
    command += ["--python-version", target.version, "--abi", target.abi]
    for platform in target.platforms(glibc):
        command += ["--platform", platform]
    command += ["--find-links", str(wheelhouse), "--target", str(site), "-r", str(requirements.resolve())]
    built: set[str] = set()
    while True:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            _drop_console_scripts(site)
            return
        missing = re.search(r"No matching distribution found for (\S+)", done.stderr)
        if missing is None:
            errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
            last = errors[-1].removeprefix("ERROR:").strip() if errors else done.stderr.strip()[-500:]
            raise BuildError(f"{requirements}: pip could not resolve the dependencies: {last}")
        requirement = missing.group(1)
        releases = _index_files(_project(requirement))
        if releases is None:
            raise BuildError(
                f"{requirement}: no such package on the index ({_index()}): check its name in {requirements}"
            )
        if requirement in built:  # built, and pip still refused it: its metadata rules this Python out
            raise BuildError(f"{requirement}: {target.describe(glibc)} is not among the Pythons it supports")
        reason = _pure_wheel_from_sdist(requirement, releases, target, glibc, wheelhouse)
        if reason is not None:
            raise BuildError(
                f"{requirement}: no wheel for {target.describe(glibc)}; {reason}: pin a release of it that has one,"
                " or build the layers for a Python it has wheels for (--python)"
            )
        built.add(requirement)


def _drop_console_scripts(site: Path) -> None:
    """Remove console scripts, whose first line names this machine's Python and build folder, and their RECORD
    rows, which carry that line's hash: a layer built twice from the same requirements is the same."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for record in site.glob("*.dist-info/RECORD"):
        rows = record.read_text().splitlines(keepends=True)
        kept = [row for row in rows if not row.startswith("../../bin/")]
        if kept != rows:
            record.write_text("".join(kept))


def _pure_wheel_from_sdist(
    requirement: str, releases: dict[str, list[str]], target: Target, glibc: tuple[int, ...], wheelhouse: Path
) -> str | None:
    """Build ``requirement`` (whose project's files on the index are ``releases``) into a pure wheel in
    ``wheelhouse``; None if done, else what the index has instead.

    A project that publishes compiled wheels (for the pinned version, or for
    any version when none is pinned) compiles code from its sdist too: that is
    refused at once, without building, as a wheel built here would fit this
    machine only.
    """
    name = _project(requirement)
    pinned = re.search(r"===?\s*([^\s,;]+)", requirement)
    version = pinned.group(1) if pinned else None
    candidates = [releases.get(version, [])] if version else list(releases.values())
    if any(_is_compiled_wheel(f) for files in candidates for f in files):
        return _what_the_index_has(name, releases, version, target, glibc)
    before = set(wheelhouse.iterdir())
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check"]
    command += ["--no-binary", name, "--wheel-dir", str(wheelhouse), requirement]
    wheel = subprocess.run(command, capture_output=True, text=True, check=False)
    if wheel.returncode != 0:
        errors = [line for line in wheel.stderr.splitlines() if line.startswith("ERROR:")] or ["no sdist either"]
        return f"{_what_the_index_has(name, releases, version, target, glibc)}; building its sdist failed: {errors[-1]}"
    for new in set(wheelhouse.iterdir()) - before:
        if _is_compiled_wheel(new.name):
            new.unlink()
            return "it has only an sdist, and that compiles code: a wheel built here would fit this machine only"
    return None


def _project(requirement: str) -> str:
    """The project a requirement names: ``pydantic`` of ``pydantic[email]>=2``."""
    return re.split(r"[<>=!~; \[]", requirement, maxsplit=1)[0]


def _is_compiled_wheel(filename: str) -> bool:
    return filename.endswith(".whl") and not filename.endswith("-any.whl")


def _index() -> str:
    return os.environ.get("PIP_INDEX_URL", PYPI_SIMPLE).rstrip("/")


def _index_files(name: str) -> dict[str, list[str]] | None:
    """{version: [file names]} of a project on the package index (PEP 691 JSON); empty if the index cannot say.

    None when the index answers that it has no such project (HTTP 404): a misspelt name, most often.
    """
    project = re.sub(r"[-_.]+", "-", name).lower()
    request = urllib.request.Request(
        f"{_index()}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            files = [entry["filename"] for entry in json.load(response)["files"]]
    except urllib.error.HTTPError as exc:
        return None if exc.code == 404 else {}
    except (OSError, ValueError, KeyError):
        return {}
    releases: dict[str, list[str]] = {}
    for filename in files:
        stem = re.sub(r"\.(whl|tar\.gz|zip|tar\.bz2)$", "", filename)
        parts = stem.split("-")
        if len(parts) >= 2:
            releases.setdefault(parts[1] if filename.endswith(".whl") else parts[-1], []).append(filename)
    return releases


def _what_the_index_has(
    name: str, releases: dict[str, list[str]], version: str | None, target: Target, glibc: tuple[int, ...]
) -> str:
    """One clause on the index's manylinux wheels for the arch: the newest CPython that the target's glibc loads,
    and wheels for the asked ABI that need a newer glibc. Only ``version``'s files when it is pinned."""
    machine = TRIPLES[target.arch][0].split("-")[0]
    considered = {version: releases.get(version, [])} if version else releases
    loadable: list[tuple[int, tuple[int, ...], str]] = []  # (CPython minor, release key, release)
    too_new: list[tuple[tuple[int, ...], str]] = []  # (glibc needed, release) of wheels for the asked ABI
    for release, files in considered.items():
        for filename in files:
            parts = filename.removesuffix(".whl").split("-") if filename.endswith(".whl") else []
            if len(parts) < 5:
                continue
            tags = [tag for tag in parts[-1].split(".") if tag.endswith(f"_{machine}")]
            needs = [needed for tag in tags if (needed := _manylinux_glibc(tag)) is not None]
            if not needs:
                continue
            if min(needs) > glibc:
                if parts[-2] == target.abi:
                    too_new.append((min(needs), release))
                continue
            for tag in parts[-3].split("."):
                if re.fullmatch(r"cp3\d+", tag):
                    loadable.append((int(tag[3:]), _version_key(release), release))
    of = f"{name} {version}" if version else name
    if loadable:
        minor, _, release = max(loadable)
        clause = f"on the index, the newest wheel of {of} for that platform is cp3{minor}"
        clause += "" if version else f" ({name} {release})"
    else:
        clause = f"the index has no CPython wheels of {of} for that platform"
    if too_new:
        needed, release = min(too_new)
        clause += f"; its {target.abi} wheels ({name} {release}) need glibc {_dotted(needed)}"
    return clause


def _manylinux_glibc(platform: str) -> tuple[int, ...] | None:
    """The glibc a manylinux platform tag needs: manylinux_2_28_x86_64 -> (2, 28); manylinux2014_* -> (2, 17)."""
    legacy = {f"{tag}_": (2, minor) for minor, tag in LEGACY_MANYLINUX.items()}
    for prefix, needed in legacy.items():
        if platform.startswith(prefix):
            return needed
    found = re.match(r"manylinux_(\d+)_(\d+)_", platform)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def strip(site: Path) -> None:
    """Remove what a function never loads: caches of other Pythons, stubs, and test suites nothing imports."""
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)
        elif path.is_file() and path.name.endswith(DEAD_SUFFIXES):
            path.unlink()
    for tests in sorted(p for p in site.rglob("*") if p.is_dir() and p.name in TEST_DIRS):
        if tests.exists() and not _imported_from_outside(tests, site):
            shutil.rmtree(tests)


def _imported_from_outside(tests: Path, site: Path) -> bool:
    """Whether code of the package (outside ``tests``) names that module: then it is not safe to remove."""
    relative = tests.relative_to(site)
    dotted = ".".join(relative.parts)
    package = site / relative.parts[0]
    names = re.compile(rf"\b{re.escape(dotted)}\b|from\s+\.+{tests.name}\b|from\s+\.+\s+import\s+.*\b{tests.name}\b")
    scope = package.rglob("*.py") if package.is_dir() and package != tests else site.glob("*.py")
    return any(tests not in source.parents and names.search(source.read_text(errors="replace")) for source in scope)


def check_binaries(site: Path, target: Target, glibc: tuple[int, ...], allow_newer: bool) -> None:
    """Every shared object must be for the target's machine and need no glibc newer than the target's."""
    for path in sorted(site.rglob("*")):
        if (
            path.is_file()
            and not path.is_symlink()
            and elf.is_elf(path)
            and elf.machine(path) != TRIPLES[target.arch][1]
        ):
            raise BuildError(f"{path.relative_to(site)} is not built for {target.arch}")
    newest, culprit = newest_glibc(site)
    if culprit is not None and newest > glibc and not allow_newer:
        raise BuildError(
            f"{culprit.relative_to(site)} needs glibc {_dotted(newest)}, newer than the target's {_dotted(glibc)}:"
            " it would fail to load on Lambda (pass --allow-newer-glibc if the layer is only for a newer system)"
        )


def size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))
