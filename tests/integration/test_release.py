"""A release as a user gets it: the sdist and the wheel built from this clone, the license, and the version.

The wheel must hold the product and nothing else (the test harness in testkit/,
the tests, benchmarks and examples stay out), carry the Apache-2.0 license, and
once installed in a fresh environment answer ``pylambda --version`` and write a
starter project. A layer says which version built it, in a file and, at DEBUG,
in a line of the init.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pylambda_build import __version__
from pylambda_build.emulator import Emulator
from tests.conftest import ROOT

Start = Callable[..., Emulator]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build``: the sdist, then the wheel built from it, as a release is made."""
    out = tmp_path_factory.mktemp("dist")
    # Run from elsewhere: in the clone, `-m build` would find build.py before the build package.
    command = [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)]
    done = subprocess.run(command, cwd=out, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def tracked(*paths: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split() if "__pycache__" not in name]


def test_the_wheel_holds_the_license_and_only_the_product(release: dict[str, Path]) -> None:
    with zipfile.ZipFile(release["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"pylambda-{__version__}.dist-info/METADATA").decode()
        license_text = wheel.read(f"pylambda-{__version__}.dist-info/licenses/LICENSE")
    info = f"pylambda-{__version__}.dist-info/"
    product = {name for name in tracked("pylambda_build") if not name.endswith("/sources")}
    product |= {f"pylambda_build/sources/{name}" for name in tracked("layer", "bootstrap", "interpreters.json")}
    product |= {"pylambda_build/sources/LICENSE"}
    product |= {f"{info}{name}" for name in ("METADATA", "WHEEL", "entry_points.txt", "RECORD", "licenses/LICENSE")}
    assert names == product, {"not the product": sorted(names - product), "missing": sorted(product - names)}
    assert not [name for name in names if name.startswith(("testkit/", "tests/", "benchmarks/", "functions/"))]
    assert license_text == (ROOT / "LICENSE").read_bytes()
    assert "License-Expression: Apache-2.0" in metadata
    assert f"Version: {__version__}" in metadata


def test_the_sdist_builds_the_same_product_and_carries_the_license(release: dict[str, Path]) -> None:
    with tarfile.open(release["sdist"]) as sdist:
        names = {member.name.split("/", 1)[1] for member in sdist.getmembers() if member.isfile()}
    assert "LICENSE" in names and "pyproject.toml" in names
    assert not [name for name in names if name.startswith(("testkit/", "tests/", "benchmarks/", "functions/"))]


def test_the_installed_wheel_answers_its_version_and_writes_a_starter(release: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(release["wheel"])], check=True, timeout=300)
    version = subprocess.run([venv / "bin" / "pylambda", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"pylambda {__version__}"
    new = [venv / "bin" / "pylambda", "new", "proj"]
    done = subprocess.run(new, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "proj" / "template.yaml").is_file() and (tmp_path / "proj" / "hello" / "app.py").is_file()


def test_a_layer_records_the_version_that_built_it_and_the_licenses_of_what_it_bundles(
    build_dir: Path, bundled_build_dir: Path
) -> None:
    for layer in (build_dir / "layer", bundled_build_dir / "layer"):
        assert (layer / "pylambda" / "VERSION").read_text() == f"{__version__}\n"
        licenses = layer / "pylambda" / "licenses"
        assert (licenses / "pylambda.txt").read_bytes() == (ROOT / "LICENSE").read_bytes()
        assert "MIT License" in (licenses / "urllib3.txt").read_text()
        assert "Apache License" in (licenses / "snapshot_restore_py.txt").read_text()
    assert not (build_dir / "layer" / "pylambda" / "licenses" / "cpython.txt").exists()  # it bundles no interpreter
    cpython = (bundled_build_dir / "layer" / "pylambda" / "licenses" / "cpython.txt").read_text()
    assert "PYTHON SOFTWARE FOUNDATION LICENSE" in cpython


def test_the_init_names_the_version_at_debug_level(emulator: Start, task_root: Callable[..., Path]) -> None:
    task = task_root({"app.py": "def handler(event, context):\n    return 1\n"})
    with emulator(task, env={"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}) as em:
        assert em.invoke("{}").body == b"1"
        logs = em.wait_for_output(f"pylambda {__version__} on Python", timeout=5)
    assert f"pylambda {__version__} on Python " in logs
    with emulator(task) as em:
        assert em.invoke("{}").body == b"1"
        logs = em.wait_for_output("REPORT RequestId", timeout=5)
    assert f"pylambda {__version__} on Python" not in logs  # nothing at the default level


def test_invoke_names_the_function_as_asked(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "build.py"), "--python", "none", "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [*command, "invoke", "echo", "{}", "--name", "orders-api"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["function_name"] == "orders-api"
    assert answer["function_arn"].endswith(":function:orders-api")
    assert "--- response of orders-api" in done.stderr
