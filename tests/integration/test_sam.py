"""The real aws-sam-cli on template.yaml: lint, and a build that matches build.py's."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pylambda_build import cache_dir, cli, elf, interpreter, standin
from tests.conftest import ROOT

pytestmark = pytest.mark.sam
SAM = str(Path(sys.executable).with_name("sam"))


def sam(*args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", **env_vars}
    return subprocess.run([SAM, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)


def test_template_passes_sam_validate_lint() -> None:
    done = sam("validate", "--lint", "--template", "template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_layers_snippet_is_a_valid_sam_template(tmp_path: Path) -> None:
    """The README's template for attaching the layer to your own functions passes `sam validate --lint` as shown."""
    readme = (ROOT / "README.md").read_text()
    [snippet] = [block for block in readme.split("```yaml\n")[1:] if "Layers:" in block.partition("```")[0]]
    template = tmp_path / "template.yaml"
    header = 'AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n'
    template.write_text(header + snippet.partition("```")[0])
    done = sam("validate", "--lint", "--template", str(template))
    assert done.returncode == 0, done.stdout + done.stderr


def test_sam_build_produces_the_same_layers_with_interpreter_and_handler_only_functions(
    bundled_build_dir: Path, standin_python: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sam-build"
    # LAYER_PYTHON points sam build at the offline stand-in instead of a download.
    done = sam(
        "build",
        "--template",
        "template.yaml",
        "--build-dir",
        str(out),
        LAYER_PYTHON=str(standin_python),
        LAYER_ALLOW_NEWER_GLIBC="1",  # the stand-in was built on this machine, with a newer glibc than Lambda's
    )
    assert done.returncode == 0, done.stdout + done.stderr
    layer = out / "PythonRuntimeLayer"
    assert (
        layer / "pylambda" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "bin" / "python3"
    ).exists()
    comparison = filecmp.dircmp(layer, bundled_build_dir / "layer")
    assert _differences(comparison) == []
    assert os.access(layer / "bootstrap", os.X_OK)
    for logical_id in FUNCTIONS:  # the handler's module, and not a function's requirements.txt
        assert sorted(p.name for p in (out / logical_id).iterdir()) == ["app.py"]
    # The dependency layer `sam build` makes (build.py deps, resolved afresh) is the one build.py makes.
    assert _differences(filecmp.dircmp(out / "OrderDependencies", bundled_build_dir / "deps" / "order")) == []
    assert _differences(filecmp.dircmp(out / "FlaskDependencies", bundled_build_dir / "deps" / "flaskapp")) == []


FUNCTIONS = (
    *("EchoFunction", "FailFunction", "BatchFunction", "GreetFunction", "StreamFunction", "OrderFunction"),
    *("WebApiFunction", "FlaskFunction"),
)


def _differences(comparison: filecmp.dircmp[str]) -> list[str]:
    found = [*comparison.left_only, *comparison.right_only, *comparison.diff_files, *comparison.funny_files]
    for sub in comparison.subdirs.values():
        found += _differences(sub)
    return found


def test_sam_build_with_architecture_arm64_builds_an_arm64_layer(tmp_path: Path) -> None:
    # Debian's arm64 CPython 3.11 in python-build-standalone's layout, byte-compiled with this machine's 3.11.
    # SAM hands make nothing but ARTIFACTS_DIR: the parameter reaches build.py through SAM's build graph.
    arm64 = standin.make_debian_tarball(tmp_path, standin.debian_usr("arm64", cache_dir() / "standins"))
    done = sam(
        *("build", "--template", "template.yaml", "--build-dir", str(tmp_path / "build")),
        *("--parameter-overrides", "Architecture=arm64"),
        LAYER_PYTHON=str(arm64),
        LAYER_COMPILE_WITH=sys.executable,
        LAYER_ALLOW_NEWER_GLIBC="1",  # bookworm's glibc is newer than Lambda's
    )
    assert done.returncode == 0, done.stdout + done.stderr
    python = tmp_path / "build" / "PythonRuntimeLayer" / "pylambda" / "python3.11" / "bin" / "python3"
    assert elf.machine(python) == interpreter.TRIPLES["arm64"][1]
    assert (python.parent.parent / "lib" / "python3.11" / "json" / "__pycache__" / "__init__.cpython-311.pyc").exists()
    for logical_id in FUNCTIONS:
        assert sorted(p.name for p in (tmp_path / "build" / logical_id).iterdir()) == ["app.py"]
    # The dependency layer's compiled wheels are for the same architecture.
    [core] = (tmp_path / "build" / "OrderDependencies").rglob("_pydantic_core*.so")
    assert elf.machine(core) == interpreter.TRIPLES["arm64"][1]
    graph = tmp_path / "build.toml"  # SAM writes it before running the targets
    architectures = [d["architecture"] for kind in tomllib.loads(graph.read_text()).values() for d in kind.values()]
    assert architectures == ["arm64"] * (len(FUNCTIONS) + 4)  # the functions and the four layers
    assert cli.sam_layer_arch(graph, "PythonRuntimeLayer") == "arm64"
    assert cli.sam_layer_arch(graph, "OrderDependencies") == "arm64"

    # A LAYER_ARCH that contradicts the template stops the build rather than pick one.
    layer = tmp_path / "build" / "PythonRuntimeLayer"
    command = [sys.executable, str(ROOT / "build.py"), "--python", "none", "layer", "--into", str(layer)]
    command += ["--sam-build-graph", str(graph)]
    env = {**os.environ, "LAYER_ARCH": "x86_64"}
    refused = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "build.py: LAYER_ARCH=x86_64 but the template's Architecture is arm64:"
        " set one, e.g. sam build --parameter-overrides Architecture=arm64"
    )
