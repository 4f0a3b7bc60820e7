"""`pylambda watch`: a function on localhost as its function URL serves it, under the real emulator, reloaded
on every change."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pylambda_build.emulator import INVOKE_PATH, free_port
from tests.conftest import ROOT

Watch = Callable[..., tuple[subprocess.Popen[str], int]]

FLASK_NOTES = ROOT / "functions" / "flaskapp"


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[Watch]:
    """Start `build.py watch FOLDER` on a free port; wait until it serves."""
    started: list[subprocess.Popen[str]] = []

    def start(folder: Path, *options: str) -> tuple[subprocess.Popen[str], int]:
        port = free_port()
        command = [sys.executable, str(ROOT / "build.py"), "--python", "none", "--out", str(tmp_path / "out")]
        command += ["watch", str(folder), "--port", str(port), *options]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        deadline = time.monotonic() + 300  # the first run builds the dependency layer
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return process, port
            except OSError:
                time.sleep(0.1)
        raise AssertionError("watch never served")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def get(port: int, path: str, data: bytes | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_a_flask_app_is_served_and_a_change_is_answered_by_the_next_request(watch: Watch, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    shutil.copytree(FLASK_NOTES, folder)
    process, port = watch(folder, "--handler", "app.app")
    status, headers, body = get(
        port, "/notes", json.dumps({"text": "hi"}).encode(), **{"Content-Type": "application/json"}
    )
    assert status == 201 and json.loads(body) == {"added": "hi", "count": 1}
    assert headers["set-cookie"] == "last-note=1; Path=/"
    assert json.loads(get(port, "/notes")[2]) == {"notes": ["hi"]}
    assert get(port, "/nowhere")[0] == 404

    source = (folder / "app.py").read_text()
    (folder / "app.py").write_text(source.replace("jsonify(notes=NOTES)", "jsonify(notes=NOTES, edited=True)"))
    assert json.loads(get(port, "/notes")[2]) == {"notes": [], "edited": True}  # a new process: NOTES is new too

    # Requests that arrive while it restarts wait for the new process, and none fails.
    (folder / "app.py").write_text(source.replace("jsonify(notes=NOTES)", "jsonify(notes=NOTES, edited=2)"))
    answers: list[tuple[int, bytes]] = []
    threads = [threading.Thread(target=lambda: answers.append(get(port, "/notes")[::2])) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [(200, b'{"edited":2,"notes":[]}\n')] * 3
    process.terminate()
    _, errors = process.communicate(timeout=20)
    assert "app.py changed: restarting" in errors
    assert f"serving {folder} at http://127.0.0.1:{port}/" in errors


def test_other_events_go_to_the_invoke_path_and_errors_answer_502(watch: Watch, task_root: Callable[..., Path]) -> None:
    folder = task_root(
        {"app.py": "def handler(event, context):\n    return {'got': event, 'arn': context.function_name}\n"}
    )
    _, port = watch(folder)
    status, _, body = get(port, INVOKE_PATH, b'{"Records": []}')
    assert (status, json.loads(body)) == (200, {"got": {"Records": []}, "arn": "task"})
    # A handler that does not answer in the HTTP shape: a function URL sends its JSON as the body.
    status, headers, body = get(port, "/anything?x=1")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body)["got"]["rawQueryString"] == "x=1"
    (folder / "app.py").write_text("def handler(event, context):\n    raise ValueError('broken')\n")
    status, headers, body = get(port, "/anything")
    assert status == 502 and headers["x-amzn-errortype"] == "ValueError"
    assert json.loads(body)["errorMessage"] == "broken"


def test_a_port_in_use_is_refused_in_one_line_before_anything_is_built(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, str(ROOT / "build.py"), "--python", "none", "--out", str(tmp_path / "out")]
        done = subprocess.run(
            [*command, "watch", "echo", "--port", str(port)], check=False, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"build.py: --port {port} cannot be used (Address already in use): give another, e.g. --port {port + 1}"
    )
    assert not (tmp_path / "out").exists()
