"""Interpreters as they ship: a statically linked libpython, arm64 from any machine, free-threaded, bad tarballs.

The stand-ins are Debian's CPython 3.11 laid out like python-build-standalone
assets (pylambda_build.standin): this machine's x86_64 build, and the arm64 build
from Debian's packages. Like current python-build-standalone executables,
Debian's links libpython statically yet ships the shared library.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pylambda_build import cache_dir, cli, elf, file_sha256, interpreter, layers, standin
from pylambda_build.emulator import Emulator
from testkit import sid_root

MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="the sid root is made and entered as root (chroot)")

# An extension module that links against libpython, as some in users' wheels wrongly do
# (python-build-standalone issue #619); built by the test with gcc.
LINKED_EXTENSION = r"""
#include <Python.h>
static PyObject *version(PyObject *self, PyObject *unused) { return PyUnicode_FromString(Py_GetVersion()); }
static PyMethodDef methods[] = {{"version", version, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "linked", NULL, -1, methods};
PyMODINIT_FUNC PyInit_linked(void) { return PyModule_Create(&module); }
"""


@pytest.fixture(scope="session")
def debian_standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine's Debian CPython 3.11 as a python-build-standalone-shaped tarball."""
    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("needs Debian's python3.11 and libpython3.11 (apt-get install python3.11)")
    return standin.make_debian_tarball(tmp_path_factory.mktemp("debian-standin"))


@pytest.fixture(scope="session")
def static_layer(tmp_path_factory: pytest.TempPathFactory, debian_standin: Path) -> Path:
    """The layer built from the Debian stand-in (its glibc is newer than Lambda's: allowed here)."""
    into = tmp_path_factory.mktemp("static-layer")
    layers.build_layer(into, layers.LayerSpec(str(debian_standin), allow_newer_glibc=True))
    return into


def compile_linked_extension(layer: Path, into: Path) -> Path:
    """linked.so, linked with -lpython3.11 against the layer's own libpython."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "linked.c").write_text(LINKED_EXTENSION)
    lib = layer / "pylambda" / "python3.11" / "lib"
    include = sysconfig.get_paths()["include"]
    command = ["gcc", "-shared", "-fPIC", f"-I{include}", str(into / "linked.c"), f"-L{lib}", "-l:libpython3.11.so.1.0"]
    subprocess.run([*command, "-o", str(into / "linked.so")], check=True)
    (into / "linked.c").unlink()
    return into / "linked.so"


# --- libpython linked statically into the executable, shipped anyway ---------------------------------------


def test_libpython_is_kept_though_the_executable_links_it_statically(static_layer: Path) -> None:
    python = static_layer / "pylambda" / "python3.11"
    needed = elf.dependencies(python / "bin" / "python3")[0]
    assert not any(name.startswith("libpython") for name in needed)
    assert sorted(p.name for p in (python / "lib").iterdir()) == ["libpython3.11.so.1.0", "python3.11"]
    # The executable's DT_RPATH (not RUNPATH) reaches it, for what extension modules load too.
    readelf = ["readelf", "-d", python / "bin" / "python3"]
    dynamic = subprocess.run(readelf, capture_output=True, text=True, check=True).stdout
    assert re.search(r"\(RPATH\)\s+Library rpath: \[\$ORIGIN/\.\./lib\]", dynamic)
    # What the target must provide: the layer's own libpython is not among it.
    assert {"libc.so.6", "libm.so.6"} <= set(interpreter.system_libraries(python))
    assert not [name for name in interpreter.system_libraries(python) if name.startswith("libpython")]


@needs_root
def test_extension_linked_against_libpython_imports_from_the_layer_with_no_other_libpython(
    static_layer: Path, tmp_path: Path
) -> None:
    root = sid_root.ensure()
    assert not list(root.glob("usr/lib/*/libpython3.11*")), "the sid root must have no libpython3.11 of its own"
    task = tmp_path / "task"
    extension = compile_linked_extension(static_layer, task)
    assert "libpython3.11.so.1.0" in elf.dependencies(extension)[0]
    (task / "app.py").write_text("import linked, sys\ndef handler(e, c):\n    return [linked.version(), sys.prefix]\n")
    with Emulator(static_layer / "bootstrap", task, enter=sid_root.entering(root)) as em:
        result = em.invoke("{}")
    debian = subprocess.run(["/usr/bin/python3.11", "-VV"], capture_output=True, text=True, check=True).stdout
    version, prefix = json.loads(result.body)
    assert f"Python {version}" == debian.strip(), em.logs()
    assert prefix == str(static_layer / "pylambda" / "python3.11")

    # The control: without the layer's copy, nothing else in the root provides it.
    shutil.copytree(static_layer, tmp_path / "stripped")
    (tmp_path / "stripped" / "pylambda" / "python3.11" / "lib" / "libpython3.11.so.1.0").unlink()
    python = tmp_path / "stripped" / "pylambda" / "python3.11" / "bin" / "python3"
    command = [*sid_root.enter(root, [tmp_path]), str(python), "-c", "import linked"]
    done = subprocess.run(command, cwd=task, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "libpython3.11.so.1.0: cannot open shared object file" in done.stderr


# --- bad input: one line and no layer -----------------------------------------------------------------------


def unpacked(standin_tarball: Path, into: Path, edit: Callable[[Path], None]) -> Path:
    """The stand-in unpacked into ``into`` and changed by ``edit`` (given its lib/python3.X folder)."""
    with tarfile.open(standin_tarball) as archive:
        archive.extractall(into, filter="data")
    edit(next((into / "python" / "lib").glob("python3.*")))
    return into


def build_fails_in_one_line(source: Path, into: Path, capsys: Any, *extra: str) -> str:
    """Run the build command on ``source``; check it failed with one line and left no interpreter; return it."""
    code = cli.main(["--python", str(source), "--allow-newer-glibc", *extra, "layer", "--into", str(into)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith(("glibc ", "system "))]  # the summary
    assert code == 1
    assert len(lines) == 1, err
    assert lines[0].startswith("pylambda: ")
    assert "Traceback" not in err
    assert not list(into.glob("pylambda/python3*")), "a layer that would fail at its first cold start was left"
    return lines[0]


def test_an_interpreter_that_cannot_start_fails_the_build(standin_python: Path, tmp_path: Path, capsys: Any) -> None:
    source = unpacked(standin_python, tmp_path / "no-encodings", lambda stdlib: shutil.rmtree(stdlib / "encodings"))
    line = build_fails_in_one_line(source, tmp_path / "layer", capsys)
    assert f"pylambda: the bundled Python {MINOR} cannot start here: Fatal Python error: " in line
    assert "No module named 'encodings'" in line


def test_an_interpreter_that_cannot_byte_compile_fails_the_build(
    standin_python: Path, tmp_path: Path, capsys: Any
) -> None:
    source = unpacked(standin_python, tmp_path / "broken", lambda stdlib: (stdlib / "broken.py").write_text("def (:\n"))
    line = build_fails_in_one_line(source, tmp_path / "layer", capsys)
    assert f"byte-compiling the layer with the bundled Python {MINOR} failed: " in line
    assert "broken.py" in line
    assert "SyntaxError" in line


def layout_tarball(path: Path, files: dict[str, str], links: dict[str, str]) -> Path:
    """A small tarball in an interpreter's layout: ``files`` {name: text}, ``links`` {name: target}."""
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(text.encode()), 0o755
            archive.addfile(member, io.BytesIO(text.encode()))
        for name, target in links.items():
            member = tarfile.TarInfo(name)
            member.type, member.linkname = tarfile.SYMTYPE, target
            archive.addfile(member)
    return path


@pytest.mark.parametrize("link", ["/etc/python3.11/sitecustomize.py", "../../../../etc/passwd"])
def test_a_tarball_with_a_link_out_of_it_fails_the_build(link: str, tmp_path: Path, capsys: Any) -> None:
    files = {"python/bin/python3.11": "", "python/lib/python3.11/os.py": ""}
    evil = layout_tarball(tmp_path / "evil.tar.gz", files, {"python/lib/python3.11/sitecustomize.py": link})
    line = build_fails_in_one_line(evil, tmp_path / "layer", capsys)
    assert line.startswith(f"pylambda: refusing to unpack {evil}: 'python/lib/python3.11/sitecustomize.py' ")


def test_a_truncated_tarball_fails_the_build(standin_python: Path, tmp_path: Path, capsys: Any) -> None:
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(standin_python.read_bytes()[: standin_python.stat().st_size // 2])
    line = build_fails_in_one_line(truncated, tmp_path / "layer", capsys)
    assert line.startswith(f"pylambda: cannot unpack {truncated}: ")


def test_a_directory_with_a_link_out_of_it_fails_the_build(standin_python: Path, tmp_path: Path, capsys: Any) -> None:
    def link_out(stdlib: Path) -> None:
        (stdlib / "sitecustomize.py").symlink_to("/etc/python3.11/sitecustomize.py")

    source = unpacked(standin_python, tmp_path / "linked-out", link_out)
    line = build_fails_in_one_line(source, tmp_path / "layer", capsys)
    assert "sitecustomize.py points outside the interpreter (to /etc/python3.11/sitecustomize.py)" in line


# --- free-threaded builds ------------------------------------------------------------------------------------


def test_a_free_threaded_build_is_refused_in_one_line(tmp_path: Path, capsys: Any) -> None:
    # python-build-standalone's layout: bin/python3.Xt, bin/python3.X -> python3.Xt, lib/python3.Xt/.
    files = {"python/bin/python3.14t": "", "python/lib/python3.14t/os.py": "", "python/lib/libpython3.14t.so.1.0": ""}
    links = {"python/bin/python3.14": "python3.14t", "python/bin/python3": "python3.14t"}
    tarball = layout_tarball(tmp_path / "cpython-3.14-freethreaded-install_only.tar.gz", files, links)
    line = build_fails_in_one_line(tarball, tmp_path / "layer", capsys)
    assert line == (
        f"pylambda: {tarball} is a free-threaded build of Python 3.14 (python3.14t), which pylambda does not bundle:"
        " use the regular build (--python 3.14)"
    )


def test_a_free_threaded_version_is_refused_before_any_download(tmp_path: Path, capsys: Any) -> None:
    code = cli.main(["--python", "3.14t", "layer", "--into", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err == (
        "pylambda: --python 3.14t: pylambda does not bundle free-threaded interpreters:"
        " use the regular build (--python 3.14)\n"
    )


# --- arm64 layers, byte-compiled on an x86_64 machine --------------------------------------------------------


@pytest.fixture(scope="module")
def arm64_layer(debian_standin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An arm64 layer built here from Debian's arm64 CPython 3.11, as `--python 3.11 --arch arm64` builds one."""
    scratch = tmp_path_factory.mktemp("arm64")
    arm64 = standin.make_debian_tarball(scratch, standin.debian_usr("arm64", cache_dir() / "standins"))
    # A pin table as for a release: the arm64 interpreter, and this machine's build of the same version.
    entries = [
        {"python": "3.11", "arch": arch, "version": "3.11", "url": tarball.as_uri(), "sha256": file_sha256(tarball)}
        for arch, tarball in (("arm64", arm64), ("x86_64", debian_standin))
    ]
    pins = scratch / "pins.json"
    pins.write_text(json.dumps({"default": "3.11", "interpreters": entries}))
    into = scratch / "layer"
    argv = ["--python", "3.11", "--arch", "arm64", "--pins", str(pins), "--allow-newer-glibc", "layer"]
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("PYLAMBDA_CACHE", str(scratch / "cache"))
        assert cli.main([*argv, "--into", str(into)]) == 0
    return into


def test_arm64_layer_built_here_carries_the_pycs_its_interpreter_loads(arm64_layer: Path) -> None:
    python = arm64_layer / "pylambda" / "python3.11"
    assert elf.machine(python / "bin" / "python3") == interpreter.TRIPLES["arm64"][1]
    assert (python / "lib" / "libpython3.11.so.1.0").exists()
    # The magic number the arm64 interpreter expects, read from its own importlib.
    bootstrap_source = (python / "lib" / "python3.11" / "importlib" / "_bootstrap_external.py").read_text()
    found = re.search(r"MAGIC_NUMBER = \((\d+)\)\.to_bytes\(2, 'little'\)", bootstrap_source)
    assert found
    magic = int(found.group(1))
    sources = [p for p in arm64_layer.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(sources) > 500
    assert any(p.is_relative_to(arm64_layer / "pylambda" / "runtime") for p in sources)
    for source in sources:
        pycs = list((source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"))
        assert [p.name for p in pycs] == [f"{source.stem}.cpython-311.pyc"], source
        header = pycs[0].read_bytes()[:16]
        assert header[:4] == magic.to_bytes(2, "little") + b"\r\n", source
        assert int.from_bytes(header[4:8], "little") == 0b01, source  # unchecked-hash: loaded as it is
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), source


@pytest.mark.skipif(shutil.which("qemu-aarch64") is None, reason="needs qemu-user (apt-get install qemu-user)")
def test_arm64_interpreter_under_qemu_imports_the_runtime_from_those_pycs(arm64_layer: Path) -> None:
    sysroot = standin.debian_usr("arm64", cache_dir() / "standins").parent
    python = arm64_layer / "pylambda" / "python3.11" / "bin" / "python3"
    before = sorted(arm64_layer.rglob("*"))
    probe = "import platform, sys; sys.path.insert(0, sys.argv[1]); import pylambda.runtime; print(platform.machine())"
    command = ["qemu-aarch64", "-L", str(sysroot), str(python), "-v", "-c", probe, arm64_layer / "pylambda" / "runtime"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout == "aarch64\n"
    loaded = re.findall(r"^# code object from '?([^'\n]+)'?$", done.stderr, re.MULTILINE)
    runtime = [path for path in loaded if "/pylambda/runtime/pylambda/" in path]
    assert runtime, done.stderr[-2000:]
    assert all(path.endswith(".cpython-311.pyc") for path in loaded), [p for p in loaded if not p.endswith(".pyc")]
    assert sorted(arm64_layer.rglob("*")) == before, "the interpreter wrote into the layer"


def test_arm64_layer_without_a_pinned_compiler_asks_for_one_and_takes_compile_with(tmp_path: Path, capsys: Any) -> None:
    arm64 = standin.make_debian_tarball(tmp_path, standin.debian_usr("arm64", cache_dir() / "standins"))
    pins = tmp_path / "pins.json"  # a table with no x86_64 build of 3.11
    pins.write_text(json.dumps({"default": "3.11", "interpreters": []}))
    argv = ["--python", str(arm64), "--arch", "arm64", "--pins", str(pins), "--allow-newer-glibc"]
    line = build_fails_in_one_line(arm64, tmp_path / "refused", capsys, "--arch", "arm64", "--pins", str(pins))
    assert "the arm64 layer needs a Python 3.11 that runs here (no Python 3.11 for x86_64 is pinned" in line
    assert line.endswith("or pass --compile-with PATH, a python3.11 that runs here")

    into = tmp_path / "layer"
    assert cli.main([*argv, "--compile-with", sys.executable, "layer", "--into", str(into)]) == 0
    json_pyc = (
        into / "pylambda" / "python3.11" / "lib" / "python3.11" / "json" / "__pycache__" / "__init__.cpython-311.pyc"
    )
    assert json_pyc.read_bytes()[:4] == importlib.util.MAGIC_NUMBER
