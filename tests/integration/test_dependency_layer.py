"""Dependency layers from `build.py deps`: real wheels from PyPI, for the layer's Python, run under the real emulator.

The order example validates its event with pydantic, whose core is a compiled
extension: it loads only if the wheel matches the interpreter's version and
architecture. It runs on the stand-in layer (this machine's Python, bundled)
and on Debian's CPython 3.15 inside the sid root, each time with the runtime
layer and the dependency layer unpacked into one folder, as Lambda does in /opt.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pylambda_build import BuildError, cli, deps, elf, layers
from pylambda_build.emulator import Emulator
from testkit import sid_root
from tests.conftest import ROOT

ORDER = {
    "order_id": "A-1",
    "items": [{"sku": "tea", "quantity": 3, "unit_price": "2.50"}, {"sku": "cup", "quantity": 1, "unit_price": "4"}],
}
REQUIREMENTS = cli.FUNCTIONS / "order" / "requirements.txt"


def run_build(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    command = [sys.executable, str(ROOT / "build.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)


def order_task_root(build_dir: Path, into: Path) -> Path:
    with zipfile.ZipFile(build_dir / "functions" / "order.zip") as archive:
        archive.extractall(into)
    return into


def assert_order_answers(emulator: Emulator, site: Path, python: str) -> None:
    answer: Any = json.loads(emulator.invoke(json.dumps(ORDER)).body)
    assert answer["total"] == "11.50"
    assert answer["python"].startswith(f"{python}.")
    assert answer["pydantic_core"] == "2.50.5"
    # The compiled core came from the dependency layer, not from anywhere on the machine.
    assert answer["compiled_core"].startswith(f"{site}/pydantic_core/_pydantic_core.cpython-")
    bad = json.loads(emulator.invoke(json.dumps({"order_id": "A-2", "items": [{"sku": "", "quantity": 0}]})).body)
    assert bad["errorType"] == "ValidationError"
    for field in ("items.0.sku", "items.0.quantity", "items.0.unit_price"):
        assert field in bad["errorMessage"]


def test_order_function_validates_with_compiled_pydantic_from_its_dependency_layer(
    bundled_build_dir: Path, tmp_path: Path
) -> None:
    opt = layers.merge_layers([bundled_build_dir / "layer", bundled_build_dir / "deps" / "order"], tmp_path / "opt")
    site = opt / "python" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    empty = tmp_path / "empty-path"
    empty.mkdir()
    # No python3 on PATH: the bundled interpreter runs, with the layer's wheels.
    env = {"PATH": str(empty), "PYTHONDONTWRITEBYTECODE": None}
    before = sorted(opt.rglob("*"))
    with Emulator(opt / "bootstrap", order_task_root(bundled_build_dir, tmp_path / "task"), env=env) as emulator:
        assert_order_answers(emulator, site, f"{sys.version_info.major}.{sys.version_info.minor}")
    assert sorted(opt.rglob("*")) == before, "the runtime wrote pycs: the layers were not compiled for it"


def test_dependency_layer_holds_unchecked_pycs_for_the_bundled_python_only(bundled_build_dir: Path) -> None:
    layer = bundled_build_dir / "deps" / "order"
    site = deps.site_packages(layer, deps.probe(Path(sys.executable), "x86_64"))
    assert sorted(p.name for p in layer.rglob("*") if p.parent == layer) == ["python"]
    sources = [p for p in site.rglob("*.py")]
    assert len(sources) > 100
    tag = sys.implementation.cache_tag
    for source in sources:
        header = (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").read_bytes()[:8]
        assert int.from_bytes(header[4:8], "little") == 0b01, source  # unchecked-hash
    assert {p.name.split(".")[-2] for p in site.rglob("*.pyc")} == {tag}
    assert not list(site.rglob("*.pyi")) and not (site / "bin").exists()
    assert [p.name for p in site.rglob("*.so")] == [f"_pydantic_core.{tag}-x86_64-linux-gnu.so"]
    assert (bundled_build_dir / "deps" / "order.zip").exists()


def test_deps_command_builds_cp315_wheels_that_run_on_debians_python_3_15(build_dir: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("entering the Debian sid root needs root")
    root = sid_root.ensure()
    # "python3" for the build: Debian's 3.15 in the root, with this test's folder bound at the same path.
    host = tmp_path / "host-bin"
    host.mkdir()
    enter = shlex.join([*sid_root.enter(root, [tmp_path]), sid_root.python("3.15")])
    (host / "python3").write_text(f'#!/bin/sh\ncd {shlex.quote(str(tmp_path))} && exec {enter} "$@"\n')
    (host / "python3").chmod(0o755)
    layer = tmp_path / "deps"
    done = run_build("--python", "none", "deps", str(REQUIREMENTS), "--into", str(layer), path=f"{host}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    site = layer / "python" / "lib" / "python3.15" / "site-packages"
    assert f"deps       {site}  " in done.stderr and " MB unzipped" in done.stderr  # its size, printed
    assert [p.name for p in site.rglob("*.so")] == ["_pydantic_core.cpython-315-x86_64-linux-gnu.so"]
    assert (site / "pydantic" / "__pycache__" / "main.cpython-315.pyc").exists()
    assert {p.name.split(".")[-2] for p in site.rglob("*.pyc")} == {"cpython-315"}

    opt = layers.merge_layers([build_dir / "layer", layer], tmp_path / "opt")
    inside = tmp_path / "in-root-bin"
    inside.mkdir()
    (inside / "python3").symlink_to(sid_root.python("3.15"))
    env = {"PATH": f"{inside}:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": None}
    task = order_task_root(build_dir, tmp_path / "task")
    with Emulator(opt / "bootstrap", task, env=env, enter=sid_root.entering(root), binds=[inside]) as emulator:
        assert_order_answers(emulator, opt / "python" / "lib" / "python3.15" / "site-packages", "3.15")


def test_a_pure_package_with_only_an_sdist_is_built_into_a_wheel_and_installed(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("docopt==0.6.2  # published as an sdist only\n")
    done = run_build("--python", "none", "deps", str(requirements), "--into", str(tmp_path / "deps"))
    assert done.returncode == 0, done.stderr
    target = deps.probe(Path(shutil.which("python3") or "python3"), "x86_64")
    site = deps.site_packages(tmp_path / "deps", target)
    assert (site / "__pycache__" / f"docopt.{sys.implementation.cache_tag}.pyc").exists()
    probe = [str(target.python), "-c", "import docopt; print(docopt.__file__)"]
    imported = subprocess.run(
        probe, check=False, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, text=True
    )
    assert imported.stdout.strip() == str(site / "docopt.py")


def test_platform_tags_are_every_manylinux_that_glibc_2_34_loads() -> None:
    x86 = deps.Target("3.15", "", "x86_64", None, "").platforms((2, 34))
    assert x86[0] == "manylinux_2_34_x86_64" and x86[-2:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "manylinux_2_28_x86_64"} <= set(x86)
    arm = deps.Target("3.15", "t", "arm64", None, "").platforms((2, 34))
    assert arm[0] == "manylinux_2_34_aarch64" and arm[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_16_aarch64" not in arm
    assert deps.Target("3.15", "t", "arm64", None, "").abi == "cp315t"


def test_test_suites_are_stripped_unless_the_package_imports_them(tmp_path: Path) -> None:
    for path, text in {
        "quiet/__init__.py": "",
        "quiet/tests/test_it.py": "import quiet\n",
        "loud/__init__.py": "from loud.tests import helpers\n",
        "loud/tests/helpers.py": "",
        "relative/__init__.py": "from .test import fixtures\n",
        "relative/test/fixtures.py": "",
        "stubs/__init__.pyi": "",
        "stubs/__pycache__/x.cpython-311.pyc": "",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    deps.strip(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "loud/__init__.py",
        "loud/tests/helpers.py",
        "quiet/__init__.py",
        "relative/__init__.py",
        "relative/test/fixtures.py",
    ]


def test_a_missing_requirements_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no such requirements file"):
        layers.build_deps(tmp_path / "nope.txt", tmp_path / "deps", layers.LayerSpec("none"))


def test_a_shared_object_needing_a_newer_glibc_than_lambdas_stops_the_build_naming_it(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "fast").mkdir(parents=True)
    # This machine's Python was built against a newer glibc than provided.al2023's 2.34: borrow its neediest binary.
    dynload = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    candidates = [Path(sys.executable).resolve(), *dynload.glob("*.so"), *Path(sys.base_prefix).glob("lib/libpython*")]
    needed, binary = max((elf.glibc_needed(path) or (), path) for path in candidates if elf.is_elf(path))
    assert needed > (2, 34), "this machine's Python must need a newer glibc than Lambda's for this test"
    shutil.copyfile(binary, site / "fast" / "_speedups.cpython-311-x86_64-linux-gnu.so")
    target = deps.Target("3.11", "", "x86_64", None, "")
    with pytest.raises(
        BuildError,
        match=rf"^fast/_speedups\.cpython-311-x86_64-linux-gnu\.so needs glibc {'.'.join(map(str, needed))},",
    ):
        deps.check_binaries(site, target, (2, 34), allow_newer=False)
    deps.check_binaries(site, target, (2, 34), allow_newer=True)
    with pytest.raises(BuildError, match="is not built for arm64"):
        deps.check_binaries(site, deps.Target("3.11", "", "arm64", None, ""), (2, 34), allow_newer=True)


def test_invoke_command_runs_a_function_with_its_dependency_layer(tmp_path: Path) -> None:
    event = json.dumps(ORDER)
    done = run_build("--python", "none", "--out", str(tmp_path / "out"), "invoke", "order", event)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == "11.50"
    assert (tmp_path / "out" / "deps" / "order.zip").exists()
