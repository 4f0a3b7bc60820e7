"""A durable function on the pylambda layer, end to end: `sam local invoke` against a durable execution emulator.

SAM runs a function with `DurableConfig` by starting a durable execution in an
emulator of the service, which invokes the function, takes its checkpoints and,
once its wait is over, invokes it again until it completes. The emulator's own
image cannot be pulled here, so it runs on the host from
aws-durable-execution-sdk-python-testing (`dex-local-runner`, pinned, in a
virtual environment of its own: its boto3 is newer than aws-sam-cli's pin), and
SAM is pointed at it with DURABLE_EXECUTIONS_EXTERNAL_EMULATOR_PORT. The
function runs in Docker on the stand-in image. Skipped, with the reason, where
Docker cannot be had.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pylambda_build import cache_dir
from pylambda_build.emulator import free_port
from tests.conftest import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.sam]
SAM = str(Path(sys.executable).with_name("sam"))
TESTING = "aws-durable-execution-sdk-python-testing==1.4.0"


@pytest.fixture(scope="module")
def durable_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`dex-local-runner start-server` on a free port of the host; its port."""
    venv = cache_dir() / f"dex-{TESTING.split('==')[1]}"
    runner = venv / "bin" / "dex-local-runner"
    if not runner.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        done = subprocess.run([*install, TESTING], capture_output=True, text=True, check=False, timeout=600)
        assert done.returncode == 0, done.stderr
    port = free_port()
    log = tmp_path_factory.mktemp("dex") / "dex.log"
    # It invokes the function through boto3's Lambda client, which wants credentials, any.
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    command = [str(runner), "start-server", "--host", "0.0.0.0", "--port", str(port), "--store-type", "memory"]
    with log.open("wb") as output:
        server = subprocess.Popen([*command, "--skip-time"], env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            break
        except urllib.error.HTTPError:
            break  # it answers
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    yield port
    server.terminate()
    server.wait(timeout=30)


def test_a_durable_execution_completes_across_invocations_replaying_its_step(
    durable_emulator: int, image: str, standin_python: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    # The stand-in interpreter (the image has no Python) was built on this machine, with a newer glibc than Lambda's.
    build = [SAM, "build", "--template", str(ROOT / "template-durable.yaml"), "--build-dir", str(tmp_path / "built")]
    built_env = {**env, "LAYER_PYTHON": str(standin_python), "LAYER_ALLOW_NEWER_GLIBC": "1"}
    built = subprocess.run(build, cwd=ROOT, env=built_env, capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (tmp_path / "event.json").write_text('{"order_id": "A-1"}')
    command = [SAM, "local", "invoke", "DurableFunction", "--template", str(tmp_path / "built" / "template.yaml")]
    command += ["--event", str(tmp_path / "event.json"), "--invoke-image", image, "--skip-pull-image"]
    command += ["--docker-network", "host"]
    env["DURABLE_EXECUTIONS_EXTERNAL_EMULATOR_PORT"] = str(durable_emulator)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "Status:   SUCCEEDED" in done.stdout, done.stdout + done.stderr
    [result] = [line for line in done.stdout.splitlines() if line.startswith("Result:")]
    assert json.loads(result.removeprefix("Result:")) == {"reserved": "A-1", "shipped": "A-1"}
    # Two invocations (before and after the wait); the checkpointed step ran in the first only, replayed in the second.
    assert done.stderr.count("workflow for A-1: handler running") == 2
    assert done.stderr.count("workflow for A-1: reserving stock") == 1
    assert done.stderr.count("REPORT RequestId:") == 2
