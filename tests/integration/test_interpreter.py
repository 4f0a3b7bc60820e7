"""Bundling an interpreter: pinned downloads, trimming, byte-compilation, and invokes on it.

All offline: the interpreter is a stand-in tarball made from the machine's own
Python (see conftest.standin_python), served from a local HTTP server when a
test needs a download.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pylambda_build import BuildError, cli, elf, interpreter, layers
from pylambda_build.emulator import Emulator

MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


class CountingServer(ThreadingHTTPServer):
    """Serves a directory and counts the GET requests it answered."""

    gets = 0


@pytest.fixture
def mirror(standin_python: Path) -> Iterator[tuple[str, CountingServer]]:
    """The stand-in tarball at http://127.0.0.1:PORT/<name>."""

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            server.gets += 1
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = CountingServer(("127.0.0.1", 0), partial(Handler, directory=str(standin_python.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{standin_python.name}", server
    server.shutdown()
    server.server_close()


def pin_table(path: Path, url: str, sha256: str) -> Path:
    entry = {"python": MINOR, "arch": "x86_64", "version": sys.version.split()[0], "url": url, "sha256": sha256}
    path.write_text(json.dumps({"default": MINOR, "interpreters": [entry]}))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- downloads ---------------------------------------------------------------------------------------


def test_pinned_download_is_checked_and_then_served_from_the_cache(
    mirror: tuple[str, CountingServer], standin_python: Path, tmp_path: Path
) -> None:
    url, server = mirror
    pin = interpreter.Pin(MINOR, "x86_64", "x", url, sha256_of(standin_python))
    first = interpreter.download(pin, tmp_path / "cache")
    second = interpreter.download(pin, tmp_path / "cache")
    assert first == second == tmp_path / "cache" / standin_python.name
    assert first.read_bytes() == standin_python.read_bytes()
    assert server.gets == 1


def test_checksum_mismatch_is_refused_and_leaves_nothing_behind(
    mirror: tuple[str, CountingServer], tmp_path: Path
) -> None:
    url, _ = mirror
    pin = interpreter.Pin(MINOR, "x86_64", "x", url, "0" * 64)
    with pytest.raises(BuildError, match="sha256 mismatch"):
        interpreter.download(pin, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_build_command_with_a_version_downloads_the_pinned_interpreter(
    mirror: tuple[str, CountingServer], standin_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, server = mirror
    pins = pin_table(tmp_path / "pins.json", url, sha256_of(standin_python))
    monkeypatch.setenv("PYLAMBDA_CACHE", str(tmp_path / "cache"))
    into = str(tmp_path / "layer")
    code = cli.main(["--python", MINOR, "--pins", str(pins), "--allow-newer-glibc", "layer", "--into", into])
    assert code == 0
    assert server.gets == 1
    assert (tmp_path / "layer" / "pylambda" / f"python{MINOR}" / "bin" / "python3").exists()


def test_build_command_stops_on_a_tampered_download_without_a_layer(
    mirror: tuple[str, CountingServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    url, _ = mirror
    pins = pin_table(tmp_path / "pins.json", url, "f" * 64)
    monkeypatch.setenv("PYLAMBDA_CACHE", str(tmp_path / "cache"))
    into = str(tmp_path / "layer")
    code = cli.main(["--python", "default", "--pins", str(pins), "--allow-newer-glibc", "layer", "--into", into])
    assert code == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert not (tmp_path / "layer" / "pylambda" / f"python{MINOR}").exists()


def test_unknown_version_names_the_pinned_ones() -> None:
    with pytest.raises(BuildError, match=r"no Python 3\.9 .*pinned: 3\.12, 3\.13, 3\.14, 3\.15"):
        interpreter.find_pin(layers.PINS, "3.9", "x86_64")


def test_every_pin_is_a_python_build_standalone_asset_for_its_arch() -> None:
    default, pins = interpreter.load_pins(layers.PINS)
    assert default == max((p.python for p in pins), key=lambda v: tuple(map(int, v.split("."))))
    assert {(p.python, p.arch) for p in pins} == {
        (v, a) for v in ("3.12", "3.13", "3.14", "3.15") for a in ("x86_64", "arm64")
    }
    for pin in pins:
        triple = interpreter.TRIPLES[pin.arch][0]
        assert pin.url.startswith("https://github.com/astral-sh/python-build-standalone/releases/download/")
        assert pin.url.endswith(
            f"cpython-{pin.version}%2B{pin.url.split('/')[-2]}-{triple}-install_only_stripped.tar.gz"
        )
        assert len(pin.sha256) == 64


def test_interpreter_for_another_architecture_is_refused(standin_python: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="built for x86_64, but the layer is for arm64"):
        interpreter.install(standin_python, tmp_path, "arm64")


# --- what the bundled layer holds ----------------------------------------------------------------------


def test_layer_is_trimmed_to_what_a_function_can_use(bundled_build_dir: Path) -> None:
    python = bundled_build_dir / "layer" / "pylambda" / f"python{MINOR}"
    stdlib = python / "lib" / f"python{MINOR}"
    assert sorted(p.name for p in (python / "bin").iterdir()) == ["python3"]
    assert sorted(p.name for p in python.iterdir()) == ["bin", "lib"]
    for dead in ("test", "idlelib", "tkinter", "ensurepip", "turtledemo", "site-packages"):
        assert not (stdlib / dead).exists(), dead
    assert not list(stdlib.glob("config-*"))
    assert (stdlib / "json" / "__init__.py").exists()
    # The shared libpython (and the stable-ABI shim) stay under their run-time names; the link-time name goes.
    kept = {p.name for p in (python / "lib").iterdir()} - {f"python{MINOR}"}
    assert kept == {f"libpython{MINOR}.so.1.0", "libpython3.so"}


def test_layer_has_no_symlinks_and_is_readable_by_everyone(bundled_build_dir: Path) -> None:
    for path in (bundled_build_dir / "layer").rglob("*"):
        assert not path.is_symlink(), path
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o444 == 0o444, path
        if path.is_dir():
            assert mode & 0o111 == 0o111, path


def test_everything_the_layer_ships_is_byte_compiled_for_use_as_is(bundled_build_dir: Path) -> None:
    layer = bundled_build_dir / "layer"
    tag = sys.implementation.cache_tag
    sources = [p for p in layer.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(sources) > 500
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        header = pyc.read_bytes()[:8]
        # PEP 552 flags: bit 0 = hash-based, bit 1 = check_source; unchecked-hash is 0b01.
        assert int.from_bytes(header[4:8], "little") == 0b01, source


def test_bundled_interpreter_serves_invokes_with_no_python_on_path_and_compiles_nothing(
    bundled_build_dir: Path, task_root: Any, tmp_path: Path
) -> None:
    layer = bundled_build_dir / "layer"
    before = {p: p.stat().st_mtime_ns for p in layer.rglob("*")}
    source = """
    import json, logging, sys
    def handler(event, context):
        logging.getLogger().warning("on the bundled interpreter")
        return {"executable": sys.executable, "prefix": sys.prefix, "version": sys.version}
    """
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = {"PATH": str(empty), "PYTHONDONTWRITEBYTECODE": None}
    with Emulator(layer / "bootstrap", task_root({"app.py": source}), env=env) as em:
        answers = [json.loads(em.invoke("{}").body) for _ in range(3)]
    python = layer / "pylambda" / f"python{MINOR}"
    assert answers[0]["executable"] == str(python / "bin" / "python3")
    assert answers[0]["prefix"] == str(python)
    after = {p: p.stat().st_mtime_ns for p in layer.rglob("*")}
    assert after == before, "running the layer wrote or rewrote files in it"


def test_dependency_layers_in_opt_python_are_importable(
    bundled_build_dir: Path, task_root: Any, tmp_path: Path
) -> None:
    opt = tmp_path / "opt"
    shutil.copytree(bundled_build_dir / "layer", opt)
    # A second layer, as Lambda would unpack it into the same /opt.
    site = opt / "python" / "lib" / f"python{MINOR}" / "site-packages"
    site.mkdir(parents=True)
    (site / "from_site_packages.py").write_text("NAME = 'site-packages'\n")
    (opt / "python" / "from_python_dir.py").write_text("NAME = 'python dir'\n")
    source = """
    import from_python_dir, from_site_packages
    def handler(event, context):
        return [from_site_packages.NAME, from_python_dir.NAME]
    """
    with Emulator(opt / "bootstrap", task_root({"app.py": source})) as em:
        assert json.loads(em.invoke("{}").body) == ["site-packages", "python dir"]


def test_with_two_interpreter_layers_the_newest_python_runs(bundled_build_dir: Path, tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    shutil.copytree(bundled_build_dir / "layer", opt)
    newer = opt / "pylambda" / "python3.99" / "bin" / "python3"
    newer.parent.mkdir(parents=True)
    newer.write_text('#!/bin/sh\necho "python3.99 runs $1"\n')
    newer.chmod(0o755)
    done = subprocess.run([str(opt / "bootstrap")], capture_output=True, text=True, check=True)
    assert done.stdout == f"python3.99 runs {opt}/pylambda/runtime\n"
    assert (opt / "pylambda" / f"python{MINOR}" / "lib" / f"python{MINOR}" / "os.py").exists()


def test_runs_as_a_user_that_does_not_own_the_layer(bundled_build_dir: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to switch to another user")
    scratch = Path(tempfile.mkdtemp(prefix="pylambda-other-user-"))
    try:
        scratch.chmod(0o755)
        shutil.copytree(bundled_build_dir / "layer", scratch / "opt")
        (scratch / "task").mkdir()
        (scratch / "task" / "app.py").write_text("import os\ndef handler(e, c):\n    return os.getuid()\n")
        (scratch / "task" / "app.py").chmod(0o644)
        with Emulator(scratch / "opt" / "bootstrap", scratch / "task", user=65534) as em:
            result = em.invoke("{}")
        assert result.body == b"65534", em.logs()
    finally:
        shutil.rmtree(scratch)


@pytest.mark.parametrize("binary", [sys.executable, "/bin/sh", "/usr/bin/readelf"])
def test_elf_needed_agrees_with_readelf(binary: str) -> None:
    path = Path(binary).resolve()
    dynamic = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    expected = {line.split("[", 1)[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line}
    assert expected
    assert elf.dependencies(path)[0] == expected


def test_glibc_newer_than_lambdas_stops_the_build_naming_the_file(
    standin_python: Path, tmp_path: Path, capsys: Any
) -> None:
    newest = max(
        (found, path)
        for path in Path(sys.base_prefix).rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and path.suffix in ("", ".so", ".0")
        and elf.is_elf(path)
        and (found := elf.glibc_needed(path)) is not None
    )
    assert newest[0] > (2, 34), "this machine's Python must need a newer glibc than Lambda's for this test"
    code = cli.main(["--python", str(standin_python), "layer", "--into", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"needs glibc {'.'.join(map(str, newest[0]))}" in err
    assert "provided.al2023 has 2.34" in err
    assert "--allow-newer-glibc" in err


def test_glibc_figure_is_printed_in_the_build_summary(standin_python: Path, tmp_path: Path, capsys: Any) -> None:
    into = str(tmp_path / "allowed")
    assert cli.main(["--python", str(standin_python), "--allow-newer-glibc", "layer", "--into", into]) == 0
    line = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("glibc"))
    assert "needs 2." in line
    assert "the target has 2.34 (allowed by --allow-newer-glibc)" in line


def test_glibc_reader_agrees_with_readelf(tmp_path: Path) -> None:
    for binary in (Path(sys.executable).resolve(), Path("/bin/sh")):
        listing = subprocess.run(["readelf", "-V", str(binary)], capture_output=True, text=True, check=True).stdout
        versions = {tuple(map(int, v.split("_")[1].split("."))) for v in re.findall(r"GLIBC_[\d.]+\d", listing)}
        assert elf.glibc_needed(binary) == max(versions)


def test_an_unpacked_directory_works_as_the_interpreter_source(standin_python: Path, tmp_path: Path) -> None:
    with tarfile.open(standin_python) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    python = interpreter.install(tmp_path / "unpacked", tmp_path / "layer", "x86_64")
    done = subprocess.run(
        [python / "bin" / "python3", "-c", "import json, sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(python)


@pytest.mark.parametrize(
    ("name", "link"), [("../escaped", None), ("python/../../escaped", None), ("python/lib/evil", "../../../../etc")]
)
def test_a_tarball_cannot_write_outside_its_directory_even_without_tarfile_filters(
    name: str, link: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(tarfile, "data_filter")  # as on Python 3.11.0 to 3.11.3 (Debian's 3.11.2)
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as archive:
        member = tarfile.TarInfo(name)
        if link is None:
            member.size = 1
            archive.addfile(member, io.BytesIO(b"x"))
        else:
            member.type, member.linkname = tarfile.SYMTYPE, link
            archive.addfile(member)
    with pytest.raises(BuildError, match="would land outside"):
        interpreter.install(evil, tmp_path / "layer", "x86_64")
