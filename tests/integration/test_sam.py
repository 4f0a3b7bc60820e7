"""The real aws-sam-cli on template.yaml: lint, and a build that matches build.py's."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

import build

pytestmark = pytest.mark.sam
SAM = str(Path(sys.executable).with_name("sam"))


def sam(*args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", **env_vars}
    return subprocess.run(
        [SAM, *args], cwd=build.ROOT, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def test_template_passes_sam_validate_lint() -> None:
    done = sam("validate", "--lint", "--template", "template.yaml")
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
    for logical_id in ("EchoFunction", "FailFunction", "BatchFunction", "GreetFunction", "StreamFunction"):
        assert sorted(p.name for p in (out / logical_id).iterdir()) == ["app.py"]
    assert sorted(p.name for p in (out / "OrderFunction").iterdir()) == ["app.py"]  # not its requirements.txt
    # The dependency layer `sam build` makes (build.py deps, resolved afresh) is the one build.py makes.
    assert _differences(filecmp.dircmp(out / "OrderDependencies", bundled_build_dir / "deps" / "order")) == []


def _differences(comparison: filecmp.dircmp[str]) -> list[str]:
    found = [*comparison.left_only, *comparison.right_only, *comparison.diff_files, *comparison.funny_files]
    for sub in comparison.subdirs.values():
        found += _differences(sub)
    return found
