"""`sam local invoke`, `start-lambda` and `start-api` for real: Docker, the real aws-sam-cli, a stand-in image.

The public provided.al2023 image cannot be pulled here, so these run on the
stand-in from testkit.docker_standin (minimal Debian, no Python, the public
image's environment). Everything else is what a user runs: `sam build` of
template.yaml (with LAYER_PYTHON pointing at the offline stand-in interpreter),
then SAM builds its own image with the layer in /opt and the emulator, mounts
the function at /var/task, and starts /opt/bootstrap.

Where Docker cannot be had (no root, no daemon), these are skipped with the
reason; nothing else depends on them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pylambda_build.emulator import free_port
from testkit import docker_standin
from tests.conftest import ROOT, installed_env

pytestmark = pytest.mark.docker
SAM = str(Path(sys.executable).with_name("sam"))


def sam_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", **extra}


def sam_build(into: Path, **env: str) -> Path:
    done = subprocess.run(
        [SAM, "build", "--template", str(ROOT / "template.yaml"), "--build-dir", str(into)],
        cwd=ROOT,
        env=sam_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return into / "template.yaml"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, standin_python: Path, image: str) -> Path:
    # The stand-in was built on this machine, with a newer glibc than Lambda's.
    return sam_build(tmp_path_factory.mktemp("sam"), LAYER_PYTHON=str(standin_python), LAYER_ALLOW_NEWER_GLIBC="1")


def sam_local_invoke(
    template: Path, image: str, function: str, event: bytes, tmp: Path
) -> subprocess.CompletedProcess[bytes]:
    """`sam local invoke FUNCTION --event FILE` on the stand-in image, as a user runs it."""
    event_file = tmp / f"{function}-event.json"
    event_file.write_bytes(event)
    command = [SAM, "local", "invoke", function, "--template", str(template), "--event", str(event_file)]
    command += ["--invoke-image", image, "--skip-pull-image", "--docker-network", "host"]
    return subprocess.run(command, env=sam_env(), capture_output=True, timeout=300, check=False)


def local_invoke(template: Path, image: str, function: str, event: dict[str, Any], tmp: Path) -> tuple[Any, str]:
    """The parsed response and the logs of a successful `sam local invoke`."""
    done = sam_local_invoke(template, image, function, json.dumps(event).encode(), tmp)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr.decode()


def test_sam_local_invoke_runs_the_starter_project_as_written(
    pylambda_installed: Path, standin_python: Path, image: str, tmp_path: Path
) -> None:
    """`pylambda new`, `sam build` and `sam local invoke` as its README says, with the offline switches set."""
    project = tmp_path / "my-project"
    subprocess.run([pylambda_installed / "pylambda", "new", str(project)], check=True, capture_output=True)
    # The stand-in interpreter was built on this machine, with a newer glibc than Lambda's.
    env = installed_env(pylambda_installed, LAYER_PYTHON=str(standin_python), LAYER_ALLOW_NEWER_GLIBC="1")
    built = subprocess.run(
        [SAM, "build"], cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert built.returncode == 0, built.stdout + built.stderr
    event = (project / "events" / "event.json").read_bytes()
    done = sam_local_invoke(project / ".aws-sam" / "build" / "template.yaml", image, "HelloFunction", event, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"message": "Hello, Ada!"}
    # Powertools' JSON record, from the dependency layer, with the context SAM's container gave.
    assert '"function_name":"HelloFunction"' in done.stderr.decode().replace(" ", "")


@pytest.mark.parametrize(
    ("function", "event", "expected"),
    [
        ("EchoFunction", {"hello": "sam"}, {"event": {"hello": "sam"}, "function_name": "EchoFunction"}),
        ("BatchFunction", {"items": [1, 2], "seconds_per_item": 0.01}, {"processed": [1, 2], "stopped_early": False}),
        ("GreetFunction", {"pathParameters": {"name": "Ada"}}, {"statusCode": 200}),
        # pydantic's compiled core, from the dependency layer SAM built with build.py deps, beside the runtime layer.
        (
            "OrderFunction",
            {"order_id": "A-1", "items": [{"sku": "tea", "quantity": 3, "unit_price": "2.50"}]},
            {"order_id": "A-1", "total": "7.50", "pydantic_core": "2.50.5"},
        ),
    ],
)
def test_sam_local_invoke_runs_each_example(
    function: str, event: dict[str, Any], expected: dict[str, Any], built: Path, image: str, tmp_path: Path
) -> None:
    answer, logs = local_invoke(built, image, function, event, tmp_path)
    assert expected.items() <= answer.items()
    # Not START: SAM attaches to the container's output while it starts, and now and then misses that first line.
    assert "REPORT RequestId:" in logs
    if function == "EchoFunction":
        assert f"\t{answer['request_id']}\techoing an event with 1 top-level keys" in logs


def test_sam_local_invoke_streams_the_stream_example(built: Path, image: str, tmp_path: Path) -> None:
    done = sam_local_invoke(built, image, "StreamFunction", b'{"count": 2}', tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"2...\n1...\nlift-off\n" in done.stdout


def test_sam_local_invoke_reports_the_error_function(built: Path, image: str, tmp_path: Path) -> None:
    error, logs = local_invoke(built, image, "FailFunction", {"amount": 500}, tmp_path)
    assert error["errorType"] == "PaymentDeclined"
    assert error["errorMessage"] == "card declined for amount 500: limit is 100"
    assert error["requestId"]
    assert "PaymentDeclined: card declined" in logs


@contextmanager
def sam_server(command: str, template: Path, image: str, *options: str) -> Iterator[str]:
    """`sam local start-lambda` or `start-api` on a free port, for the duration; yields its base URL."""
    port = free_port()
    arguments = [SAM, "local", command, "--template", str(template), "--port", str(port), "--invoke-image", image]
    arguments += ["--skip-pull-image", "--docker-network", "host", *options]
    process = subprocess.Popen(arguments, env=sam_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, 180)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def start_lambda(built: Path, image: str) -> Iterator[str]:
    with sam_server("start-lambda", built, image, "--warm-containers", "EAGER") as url:
        yield url


def test_start_lambda_serves_boto3_from_one_warm_process(start_lambda: str) -> None:
    import boto3

    client = boto3.client(
        "lambda",
        endpoint_url=start_lambda,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local-secret",
    )
    answers = [
        json.loads(client.invoke(FunctionName="EchoFunction", Payload=b'{"n": 1}')["Payload"].read()) for _ in range(3)
    ]
    counts = [answer["invokes_in_this_process"] for answer in answers]
    assert counts == sorted(counts) and counts[-1] - counts[0] == 2, counts  # one process, kept warm
    failed = client.invoke(FunctionName="FailFunction", Payload=b'{"amount": 101}')
    error = json.loads(failed["Payload"].read())
    # The managed runtime's error payload (with requestId); SAM's FunctionError heuristic does not apply to it.
    assert error["errorType"] == "PaymentDeclined"
    assert error["requestId"]
    again = json.loads(client.invoke(FunctionName="FailFunction", Payload=b'{"amount": 5}')["Payload"].read())
    assert again == {"charged": 5}


def test_start_api_serves_the_http_example(built: Path, image: str) -> None:
    with (
        sam_server("start-api", built, image) as url,
        urllib.request.urlopen(f"{url}/greet/Ada?greeting=Hi", timeout=120) as response,
    ):
        status, headers, body = response.status, dict(response.headers), json.loads(response.read())
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"]
    assert body == {"message": "Hi, Ada!"}


def test_a_layer_without_an_interpreter_says_how_to_build_one(
    tmp_path_factory: pytest.TempPathFactory, image: str, tmp_path: Path
) -> None:
    template = sam_build(tmp_path_factory.mktemp("sam-none"), LAYER_PYTHON="none")
    logs = sam_local_invoke(template, image, "EchoFunction", b"{}", tmp_path).stderr.decode()
    assert "pylambda: no Python interpreter: this layer carries none and python3 is not on PATH" in logs
    assert "pylambda layer --into DIR --python" in logs
    assert "exit status 127" in logs  # the bootstrap gave up at once, with that one line


def _wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"nothing listens on port {port} after {seconds} s")


def test_the_preparation_script_runs_a_command_with_the_image_tag(image: str) -> None:
    command = [sys.executable, "-m", "testkit.docker_standin", "--", "sh", "-c", 'echo "tag=$PYLAMBDA_IMAGE"']
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"tag={image}\n"
    assert docker_standin.answers()  # the daemon it found running is left running
