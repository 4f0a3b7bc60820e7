"""The bootstrap script on its own, and the artefacts build.py produces."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from pylambda_build import cli, layers
from pylambda_build.emulator import free_port
from tests.conftest import ROOT


def run_bootstrap(bootstrap: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(bootstrap)], env=env, cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )


def test_bootstrap_finds_its_layer_from_any_directory_by_a_relative_path(
    build_dir: Path, bare_python_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "somewhere" / "layer"
    shutil.copytree(build_dir / "layer", copy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{bare_python_dir}:/usr/bin:/bin"}
    done = run_bootstrap(Path("../somewhere/layer/bootstrap"), env, elsewhere)
    # It got as far as the runtime, which refuses to run outside Lambda with one clear line.
    assert done.returncode == 1
    assert (
        done.stderr
        == "pylambda: AWS_LAMBDA_RUNTIME_API is not set: run this under Lambda or the Runtime Interface Emulator\n"
    )


def test_bootstrap_without_any_python_says_how_to_get_one(bootstrap: Path, tmp_path: Path) -> None:
    done = run_bootstrap(bootstrap, {"PATH": str(tmp_path)}, tmp_path)
    assert done.returncode == 127
    assert done.stderr.count("\n") == 1
    assert "no Python interpreter" in done.stderr
    assert "pylambda layer --into DIR --python" in done.stderr


def test_unreachable_runtime_api_is_one_line_and_a_non_zero_exit(
    bootstrap: Path, bare_python_dir: Path, tmp_path: Path
) -> None:
    env = {
        "PATH": f"{bare_python_dir}:/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{free_port()}",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": str(tmp_path),
    }
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    done = run_bootstrap(bootstrap, env, tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("pylambda: lost the Runtime API at 127.0.0.1:")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_layer_zip_has_an_executable_bootstrap_at_its_root(build_dir: Path) -> None:
    with zipfile.ZipFile(build_dir / "layer.zip") as archive:
        info = archive.getinfo("bootstrap")
        names = archive.namelist()
    assert stat.S_IMODE(info.external_attr >> 16) == 0o755
    assert "pylambda/runtime/__main__.py" in names
    assert "pylambda/runtime/pylambda/runtime.py" in names
    assert "pylambda/runtime/pylambda/_vendor/urllib3/__init__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pinned", "vendor.txt"))]


def test_function_zips_hold_only_the_handler_code(build_dir: Path) -> None:
    for name in cli.function_names():
        with zipfile.ZipFile(build_dir / "functions" / f"{name}.zip") as archive:
            assert archive.namelist() == ["app.py"], name


def test_builds_are_reproducible(build_dir: Path, tmp_path: Path) -> None:
    cli.build_all(tmp_path, layers.LayerSpec("none"))
    for relative in ["layer.zip", *(f"functions/{n}.zip" for n in cli.function_names())]:
        assert (tmp_path / relative).read_bytes() == (build_dir / relative).read_bytes(), relative


def test_invoke_command_prints_the_response_and_fails_on_function_errors(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "build.py"), "--python", "none", "--out", str(tmp_path)]
    good = subprocess.run([*command, "invoke", "echo", '{"k": "v"}'], capture_output=True, text=True, check=False)
    bad = subprocess.run([*command, "invoke", "fail", '{"amount": 1000}'], capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr
    assert '"event": {"k": "v"}' in good.stdout
    assert "--- logs of echo" in good.stderr
    assert bad.returncode == 1
    assert '"errorType": "PaymentDeclined"' in bad.stdout


def test_invoke_command_takes_the_event_from_a_file(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"from": "a file"}')
    command = [sys.executable, str(ROOT / "build.py"), "--python", "none", "--out", str(tmp_path / "build")]
    command += ["invoke", "echo", "--event", str(event)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert '"event": {"from": "a file"}' in done.stdout
