"""Bad input to build.py and to the runtime: one short line and a non-zero exit, before anything is downloaded or built.

Each row is what a user mistypes or gets wrong, run as they would run it.
For every one: the exit status is non-zero (2 for build.py's usage errors, as
argparse gives), there is no traceback, the output is at most three lines and
says what is wrong, and neither the download cache nor the build folder has
been touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import build
from buildlib.emulator import free_port

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
    ("invoke nosuchfunction", "function 'nosuchfunction' does not exist: choose one of batch, echo, fail"),
    ("--python none invoke nosuchfunction", "function 'nosuchfunction' does not exist"),
    ("invoke echo --event missing.json", "event file missing.json does not exist"),
    ("invoke echo --event not-json.txt", "InvalidRequestContentException: Could not parse request body into json"),
    ("invoke echo {hello}", "event is not JSON (InvalidRequestContentException: Could not parse request body"),
    ("invoke echo --timeout 0", "--timeout 0 is not a number of seconds"),
    ("deps missing.txt --into deps-out", "requirements file missing.txt does not exist"),
    ("deps . --into deps-out", "requirements file . is a folder"),
    ("deps requirements.txt --into a-file", "--into a-file is a file, not a folder"),
    ("layer --into a-file", "--into a-file is a file, not a folder"),
    ("function nosuch --into fn-out", "function 'nosuch' does not exist"),
    ("function echo --into a-file", "--into a-file is a file, not a folder"),
    ("publish --regions us-east-1,us_east_2", "'us_east_2' is not a region name"),
    ("publish --regions eu-west-1,not-a-region-", "'not-a-region-' is not a region name"),
    ("publish --regions ,", "--regions names no region"),
    ("publish --regions us-east-1 --account 12", "'12' is not a 12-digit AWS account id"),
    ("--arch x86", "invalid choice: 'x86'"),
    ("invoke echo --no-such-option", "unrecognized arguments: --no-such-option"),
    ("invoke", "the following arguments are required: name"),
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
    command = [sys.executable, str(build.ROOT / "build.py"), *argv]
    done = subprocess.run(command, check=False, cwd=scratch, env=env, capture_output=True, text=True)
    assert_one_clear_line(done, says)
    assert done.returncode == 2  # every row is the user's to fix: argparse's status for usage errors
    assert not cache.exists(), "something was downloaded"
    assert not out.exists(), "something was built"
    assert not any((scratch / name).exists() for name in ("deps-out", "fn-out")), "something was built"


def test_a_debug_flag_shows_the_traceback_behind_the_line(scratch: Path, tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path / "build"), "invoke", "nosuchfunction", "--debug"]
    command = [sys.executable, str(build.ROOT / "build.py"), *argv]
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
