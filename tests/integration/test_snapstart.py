"""SnapStart's lifecycle, side by side with awslambdaric, against a scripted Runtime API.

The emulator answers `restore/next` with 404, so a scripted API plays Lambda:
it answers `restore/next` at once and records every request in order. Both
runtimes run on the same bundled stand-in interpreter; pylambda from the layer
as built (which carries snapshot_restore_py), the function's code without it;
awslambdaric with its own packages (snapshot_restore_py among them). The hooks
leave marks in the API's log (a GET under /mark/), so one list shows what ran
when, with the arguments each hook was registered with.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import baseline
from tests.scripted_api import ScriptedAPI, runtime_environment

HOOKS = """
import os
import urllib.parse
import urllib.request

from snapshot_restore_py import register_after_restore, register_before_snapshot


def mark(label, *args, **kwargs):
    query = urllib.parse.urlencode({"args": repr(args), "kwargs": repr(sorted(kwargs.items()))})
    url = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/mark/{label}?{query}"
    urllib.request.urlopen(url, timeout=5).read()
    if label == os.environ.get("FAILING_HOOK"):
        raise ConnectionError(f"{label} could not reach the database")


register_before_snapshot(mark, "close-pool", 1)
register_before_snapshot(mark, "flush", 2, reason="snapshot")


@register_after_restore
def reseed():
    mark("reseed")


register_after_restore(mark, "reopen-pool", 3, timeout=2.5)


def handler(event, context):
    return {"served": True}
"""

RESTORE_NEXT = "/2018-06-01/runtime/restore/next"
NEXT = "/2018-06-01/runtime/invocation/next"


def marks(api: ScriptedAPI) -> list[str]:
    """The API's GETs in order, marks shortened to their label (with the arguments, for the first mark)."""
    return [path.removeprefix("/mark/") for path in api.gets]


@pytest.fixture(scope="module")
def official_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return baseline.packages(tmp_path_factory.mktemp("awslambdaric"))


@pytest.fixture
def run(
    bundled_build_dir: Path, official_client: Path, tmp_path: Path
) -> Iterator[Callable[[str, dict[str, str]], tuple[ScriptedAPI, int]]]:
    """Run one runtime until its script ends: (the API with what it was sent, the runtime's exit status)."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(HOOKS)
    layer = bundled_build_dir / "layer"
    [python] = layer.glob("pylambda/python3.*/bin/python3")
    servers: list[ScriptedAPI] = []

    def start(runtime: str, env: dict[str, str]) -> tuple[ScriptedAPI, int]:
        api = ScriptedAPI(["traced"])  # one event, with a deadline (awslambdaric requires one)
        servers.append(api)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        environ = runtime_environment(api, python.parent, task, **env)
        command = [str(layer / "bootstrap")]
        if runtime == "awslambdaric":
            command = [str(python), "-m", "awslambdaric", "app.handler"]
            environ["PYTHONPATH"] = str(official_client)
        done = subprocess.run(command, env=environ, cwd=task, capture_output=True, timeout=60, check=False)
        return api, done.returncode

    yield start
    for api in servers:
        api.shutdown()
        api.server_close()


SNAP_START = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}


def test_the_function_has_no_snapshot_restore_py_of_its_own(bundled_build_dir: Path) -> None:
    runtime = bundled_build_dir / "layer" / "pylambda" / "runtime"
    assert (runtime / "snapshot_restore_py.py").is_file()  # the layer's pinned copy, after user code on sys.path


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            SNAP_START,
            [
                "flush?args=%282%2C%29&kwargs=%5B%28%27reason%27%2C+%27snapshot%27%29%5D",  # last registered, first run
                "close-pool?args=%281%2C%29&kwargs=%5B%5D",
                RESTORE_NEXT,
                "reseed?args=%28%29&kwargs=%5B%5D",
                "reopen-pool?args=%283%2C%29&kwargs=%5B%28%27timeout%27%2C+2.5%29%5D",
                NEXT,
                NEXT,
            ],
        ),
        ({}, [NEXT, NEXT]),
    ],
    ids=["snap-start", "on-demand"],
)
def test_hooks_run_around_the_snapshot_in_the_managed_runtimes_order(
    run: Callable[[str, dict[str, str]], tuple[ScriptedAPI, int]], env: dict[str, str], expected: list[str]
) -> None:
    ours, _ = run("pylambda", env)
    theirs, _ = run("awslambdaric", env)
    # Up to the `next` after the one event: then the script drops the connection, which pylambda retries.
    assert marks(ours)[: len(expected)] == marks(theirs)[: len(expected)] == expected
    assert ours.responses == theirs.responses == ["/2018-06-01/runtime/invocation/req-1/response"]
    assert json.loads(ours.bodies[0]) == {"served": True}


@pytest.mark.parametrize(
    ("failing", "ran", "path", "error_type", "status"),
    [
        ("flush", ["flush"], "/2018-06-01/runtime/init/error", "Runtime.BeforeSnapshotError", 64),
        (
            "reseed",
            ["flush", "close-pool", RESTORE_NEXT, "reseed"],
            "/2018-06-01/runtime/restore/error",
            "Runtime.AfterRestoreError",
            65,
        ),
    ],
    ids=["before snapshot", "after restore"],
)
def test_a_failing_hook_is_reported_as_the_managed_runtime_reports_it(
    run: Callable[[str, dict[str, str]], tuple[ScriptedAPI, int]],
    official_client: Path,
    failing: str,
    ran: list[str],
    path: str,
    error_type: str,
    status: int,
) -> None:
    env = {**SNAP_START, "FAILING_HOOK": failing}
    sent = {name: run(name, env) for name in ("pylambda", "awslambdaric")}
    for api, exit_status in sent.values():
        assert [mark.split("?")[0] for mark in marks(api)] == ran  # nothing after the failing hook, no next
        assert api.responses == [path]
        assert api.headers[0]["lambda-runtime-function-error-type"] == error_type
        assert exit_status == status
    documents: list[Any] = [json.loads(api.bodies[0]) for api, _ in sent.values()]
    # The same but for one frame: awslambdaric's stack starts in its own hook runner; pylambda shows only user code.
    ours, theirs = documents
    assert theirs["stackTrace"][0].startswith(f'  File "{official_client}/awslambdaric/lambda_runtime_hooks_runner.py"')
    assert ours == {**theirs, "stackTrace": theirs["stackTrace"][1:]}
    assert ours["errorType"] == "ConnectionError"
    assert ours["errorMessage"] == f"{failing} could not reach the database"
    assert all("/task/app.py" in frame for frame in ours["stackTrace"])


def test_a_copy_of_snapshot_restore_py_the_function_ships_wins_over_the_layers(
    run: Callable[[str, dict[str, str]], tuple[ScriptedAPI, int]], tmp_path: Path
) -> None:
    (tmp_path / "task" / "snapshot_restore_py.py").write_text(
        "import os, urllib.request\n\n"
        "def mark():\n"
        "    urllib.request.urlopen(f\"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/mark/own-copy\").read()\n\n"
        "def register_before_snapshot(func, *args, **kwargs):\n    return func\n\n"
        "register_after_restore = register_before_snapshot\n\n"
        "def get_before_snapshot():\n    return [(mark, (), {})]\n\n"
        "def get_after_restore():\n    return []\n"
    )
    api, _ = run("pylambda", SNAP_START)
    assert marks(api)[:3] == ["own-copy", RESTORE_NEXT, NEXT]
