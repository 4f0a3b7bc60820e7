"""`build.py image`: functions as container images on a stand-in for Lambda's provided.al2023 base image.

The public image cannot be pulled here, so the base is the stand-in of
testkit.docker_standin, which mirrors what the real image has for this:
the emulator at /usr/local/bin/aws-lambda-rie, /lambda-entrypoint.sh as the
entrypoint, /var/runtime, the same environment. An image then answers
`docker run` as AWS's own images do, and `sam build` builds a template's image
function from the context `build.py image --context` writes. Skipped, with the
reason, where Docker cannot be had.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pylambda_build import image
from pylambda_build.emulator import free_port
from testkit import docker_standin
from tests.conftest import ROOT

pytestmark = pytest.mark.docker
SAM = str(Path(sys.executable).with_name("sam"))
INVOKE = "/2015-03-31/functions/function/invocations"


@pytest.fixture(scope="module")
def base(docker_daemon: None) -> str:
    try:
        # Also under the real name, for a Dockerfile that names it (FROM public.ecr.aws/lambda/provided:al2023).
        return docker_standin.ensure_base_image(docker_standin.BASE_TAG, image.DEFAULT_BASE)
    except docker_standin.Unavailable as exc:
        pytest.skip(f"no stand-in image: {exc}")


def build_py(*args: str, standin_python: Path) -> subprocess.CompletedProcess[str]:
    # The stand-in interpreter (the base has no Python) was built on this machine, with a newer glibc than Lambda's.
    command = [sys.executable, str(ROOT / "build.py"), "--python", str(standin_python), "--allow-newer-glibc", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture
def run_image() -> Iterator[Any]:
    """`docker run -p PORT:8080 TAG [env]`, as AWS's images are tried locally; the containers are removed after."""
    containers: list[str] = []

    def run(tag: str, **env: str) -> int:
        port = free_port()
        flags = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
        command = [docker_standin.docker(), "run", "-d", "-p", f"127.0.0.1:{port}:8080", *flags, tag]
        containers.append(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())
        return port

    yield run
    for container in containers:
        subprocess.run([docker_standin.docker(), "rm", "-f", container], capture_output=True, check=False)


def invoke(port: int, event: dict[str, Any]) -> bytes:
    """POST the event as a caller of the image's emulator does, retrying while the container starts."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{INVOKE}", json.dumps(event).encode(), {"Content-Type": "application/json"}
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body: bytes = response.read()
                return body
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_an_image_of_a_function_answers_docker_run_as_aws_base_images_do(
    base: str, standin_python: Path, run_image: Any
) -> None:
    done = build_py("image", "echo", "--tag", "pylambda-test/echo:1", "--base", base, standin_python=standin_python)
    assert done.returncode == 0, done.stderr
    answer = json.loads(invoke(run_image("pylambda-test/echo:1"), {"hello": "image"}))
    assert answer["event"] == {"hello": "image"}
    assert answer["function_name"] == "test_function"  # the emulator's default name, as for AWS's images
    inspect = [docker_standin.docker(), "image", "inspect", "pylambda-test/echo:1"]
    config = json.loads(subprocess.run(inspect, capture_output=True, text=True, check=True).stdout)[0]["Config"]
    assert config["Entrypoint"] == ["/lambda-entrypoint.sh"] and config["Cmd"] == ["app.handler"]
    assert not any("snapstart" in label for label in (config.get("Labels") or {}))  # the runtime follows the API


def test_an_image_streams_and_serves_managed_instances_as_the_layer_does(
    base: str, standin_python: Path, run_image: Any
) -> None:
    done = build_py("image", "stream", "--tag", "pylambda-test/stream:1", "--base", base, standin_python=standin_python)
    assert done.returncode == 0, done.stderr
    # The HTTP prelude (status and headers), eight NULs, then the items as the handler yielded them.
    prelude = b'{"statusCode": 200, "headers": {"content-type": "text/plain; charset=utf-8"}}' + b"\0" * 8
    assert invoke(run_image("pylambda-test/stream:1"), {"count": 2}) == prelude + b"2...\n1...\nlift-off\n"
    # The emulator's managed-instances mode, in the image: four invokes at once, each answered.
    port = run_image("pylambda-test/stream:1", AWS_LAMBDA_MAX_CONCURRENCY="4")
    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda n: invoke(port, {"count": n}), [0, 1, 0, 1]))
    assert [body.removeprefix(prelude) for body in bodies] == [b"lift-off\n", b"1...\nlift-off\n"] * 2


@pytest.mark.sam
def test_a_templates_image_function_builds_with_sam_build_and_answers_sam_local_invoke(
    base: str, standin_python: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "template.yaml").write_text((ROOT / "template-image.yaml").read_text())
    done = build_py(
        "image", "echo", "--context", str(project / "build" / "image" / "echo"), standin_python=standin_python
    )
    assert done.returncode == 0, done.stderr
    env = {"SAM_CLI_TELEMETRY": "0", "PATH": "/usr/bin:/bin"}
    built = subprocess.run(
        [SAM, "build"], cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (project / "event.json").write_text('{"from": "sam"}')
    command = [SAM, "local", "invoke", "EchoImageFunction", "-e", "event.json", "--skip-pull-image"]
    command += ["--docker-network", "host"]
    ran = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout.strip().splitlines()[-1])
    assert answer["event"] == {"from": "sam"} and answer["function_name"] == "EchoImageFunction"


def test_a_base_image_that_is_not_there_is_one_line(base: str, tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "build.py"), "--python", "none", "--out", str(tmp_path / "build")]
    command += ["image", "echo", "--tag", "pylambda-test/echo:2", "--base", "pylambda-test/no-such-base:1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("build.py: --base pylambda-test/no-such-base:1 is not here and cannot be pulled (")
    assert line.endswith("): pull or build it first, or give another --base")
    assert not (tmp_path / "build").exists()
