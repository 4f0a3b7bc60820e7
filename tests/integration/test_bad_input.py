"""Bad input to build.py and to the runtime: one short line and a non-zero exit, before anything is downloaded or built.

Each row is what a user mistypes or gets wrong, run as they would run it.
For every one: the exit status is non-zero (2 for build.py's usage errors, as
argparse gives), there is no traceback, the output is at most three lines and
says what is wrong, and neither the download cache nor the build folder has
been touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pylambda_build.emulator import Emulator, free_port
from tests.conftest import ROOT

BAD_PINS = '{"default": "3.15", "interpreters": [{"python": "3.15"'
# (command line after build.py, what the one line must say); files named here exist in the scratch folder.
BUILD_PY_CASES = [
    ("--pins malformed.json", "--pins malformed.json is not JSON"),
    ("--pins missing.json", "--pins missing.json does not exist"),
    ("--pins list.json", "--pins list.json is not a pin table"),
    ("--pins no-url.json", "interpreter 1 lacks one of python, arch, version, url, sha256"),
    ("--python 3.9", "no Python 3.9 for x86_64 is pinned"),
    ("--python 3.14t", "does not bundle free-threaded interpreters"),
    ("--python ./no-such-python.tar.gz", "is not 'none', a version such as 3.14, nor a tarball or directory"),
    ("--out a-file/build", "--out a-file/build cannot be created, as"),
    ("--out a-file", "--out a-file is a file, not a folder"),
    (
        "invoke nosuchfunction",
        "function 'nosuchfunction' does not exist: give the folder that holds the handler's module, or one of batch,",
    ),
    ("invoke a-file", "function a-file is a file, not a folder"),
    ("invoke echo --requirements missing.txt", "requirements file missing.txt does not exist"),
    ("--python none invoke nosuchfunction", "function 'nosuchfunction' does not exist"),
    ("invoke echo --event missing.json", "event file missing.json does not exist"),
    ("invoke echo --event not-json.txt", "InvalidRequestContentException: Could not parse request body into json"),
    ("invoke echo {hello}", "event is not JSON (InvalidRequestContentException: Could not parse request body"),
    ("invoke echo --timeout 0", "--timeout 0 is not a number of seconds"),
    ("invoke echo --name orders/api", "--name 'orders/api' is not a function name: give 1 to 64 letters"),
    ("deps missing.txt --into deps-out", "requirements file missing.txt does not exist"),
    ("deps . --into deps-out", "requirements file . is a folder"),
    ("deps requirements.txt --into a-file", "--into a-file is a file, not a folder"),
    ("deps requirements.txt --into deps-out --zip a-folder", "--zip a-folder is a folder: give the path of the zip"),
    ("deps requirements.txt --into deps-out --zip a-file/layer.zip", "--zip a-file/layer.zip: its folder"),
    ("new a-folder", "a-folder is not empty: give a new folder for the project"),
    ("image nosuch --tag nosuch:1", "function 'nosuch' does not exist"),
    ("image echo --tag Echo:Latest", "--tag 'Echo:Latest' is not an image name: give one such as my-function:latest"),
    ("image echo", "one of the arguments --tag --context is required"),
    ("image echo --context a-folder", "--context a-folder is not empty: give a new folder for the build context"),
    ("new a-file", "project folder a-file is a file, not a folder"),
    ("layer --into a-file", "--into a-file is a file, not a folder"),
    ("function nosuch --into fn-out", "function 'nosuch' does not exist"),
    ("function echo --into a-file", "--into a-file is a file, not a folder"),
    ("publish --regions us-east-1,us_east_2", "'us_east_2' is not a region name"),
    ("publish --regions eu-west-1,not-a-region-", "'not-a-region-' is not a region name"),
    ("publish --regions ,", "--regions names no region"),
    ("publish --regions us-east-1 --account 12", "'12' is not a 12-digit AWS account id"),
    ("watch nosuch", "function 'nosuch' does not exist"),
    ("watch echo --port 0", "--port 0 is not a port: give one from 1 to 65535"),
    ("watch echo --event not-json.txt", "InvalidRequestContentException: Could not parse request body into json"),
    ("watch echo --requirements missing.txt", "requirements file missing.txt does not exist"),
    ("--arch x86", "invalid choice: 'x86'"),
    ("invoke echo --no-such-option", "unrecognized arguments: --no-such-option"),
    ("invoke", "the following arguments are required: function"),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input")
    (folder / "malformed.json").write_text(BAD_PINS)
    (folder / "list.json").write_text("[1, 2]")
    (folder / "no-url.json").write_text('{"default": "3.15", "interpreters": [{"python": "3.15"}]}')
    (folder / "a-file").write_text("not a folder")
    (folder / "not-json.txt").write_text("hello")
    (folder / "requirements.txt").write_text("requests\n")
    (folder / "a-folder").mkdir()
    (folder / "a-folder" / "notes.txt").write_text("someone's work")
    return folder


def assert_one_clear_line(done: subprocess.CompletedProcess[str], says: str) -> None:
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0, output
    # No frames: a runtime's init error report, in the managed runtime's layout, may carry its empty
    # "Traceback (most recent call last):" header, as one event (\r inside, not \n).
    assert 'File "' not in output, output
    assert len(output.split("\n")) <= 3, output
    assert says in output, output


@pytest.mark.parametrize(("arguments", "says"), BUILD_PY_CASES, ids=[case[0] for case in BUILD_PY_CASES])
def test_build_py_refuses_bad_input_in_one_line_before_any_download_or_build(
    scratch: Path, tmp_path: Path, arguments: str, says: str
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "build"
    argv = arguments.split()
    if not any(arg in ("--out", "--into") for arg in argv):
        argv = ["--out", str(out), *argv]
    env = {**os.environ, "PYLAMBDA_CACHE": str(cache), "LAYER_PYTHON": "default"}
    command = [sys.executable, str(ROOT / "build.py"), *argv]
    done = subprocess.run(command, check=False, cwd=scratch, env=env, capture_output=True, text=True)
    assert_one_clear_line(done, says)
    assert done.returncode == 2  # every row is the user's to fix: argparse's status for usage errors
    assert not cache.exists(), "something was downloaded"
    assert not out.exists(), "something was built"
    assert not any((scratch / name).exists() for name in ("deps-out", "fn-out")), "something was built"


def test_a_debug_flag_shows_the_traceback_behind_the_line(scratch: Path, tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path / "build"), "invoke", "nosuchfunction", "--debug"]
    command = [sys.executable, str(ROOT / "build.py"), *argv]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "UsageError: function 'nosuchfunction' does not exist" in done.stderr


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        ({"AWS_LAMBDA_RUNTIME_API": "nonsense"}, "AWS_LAMBDA_RUNTIME_API='nonsense' is not host:port"),
        ({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:port"}, "is not host:port"),
        ({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:70000"}, "is not host:port"),
        ({"AWS_LAMBDA_RUNTIME_API": ":9001"}, "is not host:port"),
        ({}, "AWS_LAMBDA_RUNTIME_API is not set"),
        ({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:{free}", "_HANDLER": None}, "_HANDLER is not set"),
        ({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:{free}"}, "lost the Runtime API at 127.0.0.1:"),
    ],
    ids=["not an address", "port not a number", "port out of range", "no host", "unset", "no handler", "no API"],
)
def test_the_runtime_refuses_a_bad_environment_in_one_line(
    bootstrap: Path, tmp_path: Path, environment: dict[str, str | None], says: str
) -> None:
    env = {key: value for key, value in os.environ.items() if key not in ("AWS_LAMBDA_RUNTIME_API", "_HANDLER")}
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    env.update(_HANDLER="app.handler", LAMBDA_TASK_ROOT=str(tmp_path))
    for key, value in environment.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value.format(free=free_port())
    # Bytes, not text=True, whose universal newlines would split an event at its \r.
    raw = subprocess.run([str(bootstrap)], check=False, env=env, capture_output=True, timeout=30)
    done = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
    assert_one_clear_line(done, says)


# Builds that start and then fail for a reason the user can fix: one line (exit status 1) that says what to do.
# Under `sam build` (--sam-build-graph, which the Makefile targets pass) the layer options reach pylambda as
# environment variables, and the line names those.
@pytest.mark.parametrize("under_sam", [False, True], ids=["command line", "sam build"])
def test_a_failed_interpreter_download_names_the_offline_choices(tmp_path: Path, under_sam: bool) -> None:
    pins = tmp_path / "pins.json"  # an interpreter pinned at an address nothing answers on
    url = f"http://127.0.0.1:{free_port()}/cpython-3.15.0-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
    entry = {"python": "3.15", "arch": "x86_64", "version": "3.15.0", "url": url, "sha256": "0" * 64}
    pins.write_text(json.dumps({"default": "3.15", "interpreters": [entry]}))
    argv = ["--pins", str(pins), "--python", "3.15", "layer", "--into", str(tmp_path / "PythonRuntimeLayer")]
    if under_sam:
        argv += ["--sam-build-graph", str(tmp_path / "build.toml")]
    done = run_build_py(argv, PYLAMBDA_CACHE=str(tmp_path / "cache"))
    assert_one_clear_line(done, f"could not download {url}")
    assert done.returncode == 1
    choices = ("LAYER_PYTHON=none", "LAYER_PYTHON=TARBALL") if under_sam else ("--python none", "--python TARBALL")
    assert all(choice in done.stderr for choice in choices), done.stderr


@pytest.mark.parametrize("under_sam", [False, True], ids=["command line", "sam build"])
def test_the_glibc_refusal_names_the_switch_that_works_where_the_build_runs(
    standin_python: Path, tmp_path: Path, under_sam: bool
) -> None:
    # The stand-in was built on this machine, whose glibc is newer than provided.al2023's.
    argv = ["--python", str(standin_python), "layer", "--into", str(tmp_path / "PythonRuntimeLayer")]
    if under_sam:
        argv += ["--sam-build-graph", str(tmp_path / "build.toml")]
    done = run_build_py(argv, LAYER_ALLOW_NEWER_GLIBC="0")
    assert_one_clear_line(done, "it would fail to start on Lambda")
    assert done.returncode == 1
    switch, other = ("LAYER_ALLOW_NEWER_GLIBC=1", "--allow") if under_sam else ("--allow-newer-glibc", "LAYER_")
    assert switch in done.stderr and other not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("requirement", "says"),
    [
        ("requets==2.32.3", "requets==2.32.3: no such package on the index (https://pypi.org/simple): check its name"),
        (
            "markupsafe==2.0.1",  # wheels up to cp310 only
            "markupsafe==2.0.1: no wheel for CPython {version} ({abi}) on manylinux x86_64 with glibc <= 2.34; on the"
            " index, the newest wheel of markupsafe 2.0.1 for that platform is cp310: pin a release of it that has"
            " one, or build the layers for a Python it has wheels for (--python)",
        ),
    ],
    ids=["misspelt", "no wheel"],
)
def test_a_dependency_that_cannot_be_had_is_one_line_that_says_what_to_do(
    tmp_path: Path, requirement: str, says: str
) -> None:
    (tmp_path / "requirements.txt").write_text(f"{requirement}\n")
    argv = ["--python", "none", "deps", str(tmp_path / "requirements.txt"), "--into", str(tmp_path / "deps")]
    done = run_build_py(argv, PIP_INDEX_URL=None)
    abi = f"cp{sys.version_info.major}{sys.version_info.minor}"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert_one_clear_line(done, f"build.py: {says.format(version=version, abi=abi)}")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def run_build_py(argv: list[str], **env: str | None) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if key not in env}
    environ.update({key: value for key, value in env.items() if value is not None})
    command = [sys.executable, str(ROOT / "build.py"), *argv]
    return subprocess.run(command, check=False, env=environ, capture_output=True, text=True, timeout=300)


def test_a_dependency_layer_built_for_another_python_is_named_at_init(
    build_dir: Path, tmp_path: Path, task_root: Callable[[dict[str, str]], Path]
) -> None:
    """Made for the managed python3.9 runtime, its packages sit where this Python never looks."""
    opt = tmp_path / "opt"
    shutil.copytree(build_dir / "layer", opt)
    other = opt / "python" / "lib" / "python3.9" / "site-packages" / "no_such_package_here"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    task = task_root({"app.py": "import shipping_rates\n\ndef handler(event, context):\n    return event\n"})
    with Emulator(opt / "bootstrap", task) as emulator:
        error = emulator.invoke("{}").json()
        logs = emulator.wait_for_output("pylambda: the dependency layer", timeout=5)
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    explanation = (
        f"the dependency layer in {other.parent} is for Python 3.9, but the runtime runs Python {ours},"
        f" which cannot import from it: build the dependency layer for {ours}"
    )
    assert error == {
        "errorType": "Runtime.ImportModuleError",
        "errorMessage": f"Unable to import module 'app': No module named 'shipping_rates' ({explanation}"
        " (with the same --python as the runtime layer))",
        "requestId": "",
        "stackTrace": [],
    }
    assert [line for line in logs.splitlines() if line.startswith("pylambda: ")] == [
        f"pylambda: {explanation} (with the same --python as the runtime layer)"
    ]


def test_a_handler_module_that_does_not_exist_reports_no_importlib_frames(
    build_dir: Path, task_root: Callable[[dict[str, str]], Path]
) -> None:
    task = task_root({"app.py": "def handler(event, context):\n    return event\n"})
    with Emulator(build_dir / "layer" / "bootstrap", task, "nosuchmodule.handler") as emulator:
        error = emulator.invoke("{}").json()
    assert error == {
        "errorType": "Runtime.ImportModuleError",
        "errorMessage": "Unable to import module 'nosuchmodule': No module named 'nosuchmodule'",
        "requestId": "",
        "stackTrace": [],
    }


def test_an_image_without_docker_is_one_line_that_says_so(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()  # a PATH without docker
    argv = ["--python", "none", "--out", str(tmp_path / "build"), "image", "echo", "--tag", "echo:1"]
    done = run_build_py(argv, PATH=str(tmp_path / "bin"))
    assert_one_clear_line(done, "build.py: image needs Docker, and there is no docker command here: install Docker")
    assert done.returncode == 2
    assert not (tmp_path / "build").exists()
