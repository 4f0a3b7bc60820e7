"""A Runtime API that fails: bounded, logged retries and a clean exit, never a hot spin.

The emulator cannot produce these faults, so a small scripted server stands in
for the Runtime API and the real bootstrap runs against it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scripted_api import ScriptedAPI, runtime_environment


@pytest.fixture
def run_against(bootstrap: Path, bare_python_dir: Path, tmp_path: Path) -> Iterator[Any]:
    servers: list[ScriptedAPI] = []

    def run(script: list[str], **extra: str) -> tuple[ScriptedAPI, subprocess.CompletedProcess[str], float]:
        api = ScriptedAPI(script)
        servers.append(api)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        (tmp_path / "app.py").write_text("def handler(e, c):\n    return e\n")
        env = runtime_environment(api, bare_python_dir, tmp_path, **extra)
        started = time.monotonic()
        done = subprocess.run([str(bootstrap)], env=env, capture_output=True, text=True, timeout=30, check=False)
        return api, done, time.monotonic() - started

    yield run
    for api in servers:
        api.shutdown()
        api.server_close()


@pytest.mark.parametrize("failure", ["500", "drop"])
def test_a_failing_api_gets_a_few_spaced_retries_then_a_clean_exit(run_against: Any, failure: str) -> None:
    api, done, elapsed = run_against(["event", *[failure] * 10])
    assert done.returncode == 1
    assert api.responses == ["/2018-06-01/runtime/invocation/req-1/response"]
    # One good `next`, then the first try and three retries: no more.
    assert len(api.nexts) == 5
    gaps = [later - earlier for earlier, later in zip(api.nexts[1:], api.nexts[2:], strict=False)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    lines = done.stderr.splitlines()
    assert len(lines) == 4, done.stderr
    assert all(line.startswith("pylambda: GET /2018-06-01/runtime/invocation/next") for line in lines[:3])
    assert lines[3].startswith("pylambda: lost the Runtime API at 127.0.0.1:")
    assert "Traceback" not in done.stderr
    assert elapsed < 10


def test_with_several_slots_a_lost_api_ends_the_runtime_instead_of_restarting_workers(run_against: Any) -> None:
    """Managed instances: a worker that loses the API tells its supervisor, which stops rather than fork again."""
    api, done, elapsed = run_against(["event", *["drop"] * 40], AWS_LAMBDA_MAX_CONCURRENCY="4")
    assert done.returncode == 1, done.stderr
    assert api.responses == ["/2018-06-01/runtime/invocation/req-1/response"]
    assert "pylambda: lost the Runtime API at 127.0.0.1:" in done.stderr
    assert "starting another" not in done.stderr and "Traceback" not in done.stderr
    assert elapsed < 15


def test_a_passing_hiccup_is_ridden_out(run_against: Any) -> None:
    api, done, _ = run_against(["event", "500", "drop", "event"])
    assert api.responses == [
        "/2018-06-01/runtime/invocation/req-1/response",
        "/2018-06-01/runtime/invocation/req-4/response",
    ]
    assert done.returncode == 1  # the script ends with the API gone for good
    assert done.stderr.count("trying again") == 2 + 3


def test_a_request_id_cannot_steer_the_runtime_to_another_path(run_against: Any) -> None:
    api, _, _ = run_against(["evil"])
    assert api.responses == ["/2018-06-01/runtime/invocation/..%2F..%2Finit%2Ferror/response"]
