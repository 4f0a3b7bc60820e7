"""async def handlers on one lasting event loop, and several invokes at once (Lambda Managed Instances)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pylambda import concurrency

from pylambda_build import readable_by_all
from pylambda_build.emulator import Emulator, InvokeResult
from testkit import baseline

Start = Callable[..., Emulator]
TaskRoot = Callable[[Mapping[str, str]], Path]

ASYNC = """
import asyncio, sys

# Made at import, as a module-level client would be: bound to the loop it first runs on.
lock = asyncio.Lock()
queue = asyncio.Queue()
seen_loops = []

async def handler(event, context):
    loop = asyncio.get_running_loop()
    seen_loops.append(id(loop))
    async with lock:
        await queue.put(event.get("n"))
        got = await queue.get()
    if event.get("fail"):
        raise LookupError("async failure")
    if event.get("sleep"):
        await asyncio.sleep(event["sleep"])
    return {"got": got, "loops": len(set(seen_loops)), "remaining": context.get_remaining_time_in_millis()}

def sync_handler(event, context):
    return {"asyncio_imported": "asyncio" in sys.modules}
"""


def body(result: InvokeResult) -> Any:
    return json.loads(result.body)


def test_async_handler_keeps_one_loop_and_its_clients_across_invokes(emulator: Start, task_root: TaskRoot) -> None:
    with emulator(task_root({"app.py": ASYNC})) as em:
        answers = [body(em.invoke(json.dumps({"n": n}))) for n in range(3)]
    assert [a["got"] for a in answers] == [0, 1, 2]
    assert {a["loops"] for a in answers} == {1}
    assert all(a["remaining"] > 0 for a in answers)


def test_async_handler_errors_are_reported_and_the_loop_serves_on(emulator: Start, task_root: TaskRoot) -> None:
    with emulator(task_root({"app.py": ASYNC})) as em:
        error = body(em.invoke('{"fail": true}'))
        after = body(em.invoke('{"n": 5}'))
    assert (error["errorType"], error["errorMessage"]) == ("LookupError", "async failure")
    assert any("in handler" in frame for frame in error["stackTrace"])
    assert after["got"] == 5


def test_async_handler_past_its_deadline_times_out_like_a_sync_one(emulator: Start, task_root: TaskRoot) -> None:
    with emulator(task_root({"app.py": ASYNC}), timeout=1) as em:
        timed_out = em.invoke('{"sleep": 5}')
        after = body(em.invoke('{"n": 1}'))
    assert timed_out.body == b"Task timed out after 1.00 seconds"
    assert after["got"] == 1


def test_sync_handlers_never_import_asyncio(emulator: Start, task_root: TaskRoot) -> None:
    root = task_root({"app.py": "import sys\ndef handler(e, c):\n    return 'asyncio' in sys.modules\n"})
    with emulator(root) as em:
        assert body(em.invoke("{}")) is False


# --- several invokes at once -------------------------------------------------------------------------

CONCURRENT = """
import asyncio, atexit, logging, os, threading, time
logging.getLogger().setLevel(logging.INFO)
# One write per line: workers print at once when SIGTERM reaches them all.
atexit.register(lambda: os.write(1, f"atexit hook ran in {os.getpid()}\\n".encode()))

def handler(event, context):
    logging.info("start %s in %s", event["n"], os.getpid())
    time.sleep(event.get("sleep", 0.3))
    logging.info("end %s", event["n"])
    return {"n": event["n"], "request_id": context.aws_request_id, "pid": os.getpid(),
            "thread": threading.current_thread().name}

async def async_handler(event, context):
    logging.info("start %s in %s", event["n"], os.getpid())
    await asyncio.sleep(0.3)
    logging.info("end %s", event["n"])
    return {"n": event["n"], "request_id": context.aws_request_id, "pid": os.getpid(),
            "loop": id(asyncio.get_running_loop())}
"""

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="managed-instances mode needs a mount namespace (root)")


def invoke_all(em: Emulator, events: list[dict[str, Any]]) -> list[Any]:
    """Send the events at once; retry the emulator's Runtime.Unavailable, a slot still on its way back to `next`."""

    def one(event: dict[str, Any]) -> Any:
        for _ in range(50):
            answer = body(em.invoke(json.dumps(event)))
            if answer != {"errorType": "Runtime.Unavailable"}:
                return answer
            time.sleep(0.02)
        raise AssertionError("no slot free")

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(one, events))


@needs_root
@pytest.mark.parametrize("mode", concurrency.MODES)
@pytest.mark.parametrize("handler", ["app.handler", "app.async_handler"])
def test_slots_serve_invokes_at_once_with_their_own_request_ids_in_the_logs(
    handler: str, mode: str, emulator: Start, task_root: TaskRoot
) -> None:
    root = task_root({"app.py": CONCURRENT})
    with emulator(root, handler, env={"AWS_LAMBDA_CONCURRENCY_MODE": mode}, max_concurrency=8) as em:
        invoke_all(em, [{"n": -1, "sleep": 0}])  # the runtime is up
        started = time.monotonic()
        answers = invoke_all(em, [{"n": n} for n in range(8)])
        elapsed = time.monotonic() - started
        logs = em.wait_for_output('"end 7"')
    assert sorted(a["n"] for a in answers) == list(range(8))
    assert elapsed < 1.5, f"8 invokes of 0.3 s took {elapsed:.2f} s: not concurrent"
    # 8 invokes at once fill every slot, so every worker process serves some.
    assert len({a["pid"] for a in answers}) == concurrency.worker_count(8, mode)
    if handler == "app.async_handler":  # one loop per worker process, whatever the invoke's thread
        assert len({(a["pid"], a["loop"]) for a in answers}) == concurrency.worker_count(8, mode)
    records = [json.loads(line) for line in logs.splitlines() if line.startswith('{"timestamp"')]
    by_message = {record["message"]: record["requestId"] for record in records}
    for answer in answers:  # interleaved lines, each tagged with its own invoke
        assert by_message[f"start {answer['n']} in {answer['pid']}"] == answer["request_id"]
        assert by_message[f"end {answer['n']}"] == answer["request_id"]


STATEFUL = """
import os, random, socket, time

# Module state, as single-concurrency Lambda code keeps it: made at import, then used per request.
INIT_PID = os.getpid()
CONNECTION = socket.socket()  # a client opened at import
CONNECTION_OWNER = os.getpid()
SEED = random.random()
current_request = None

def handler(event, context):
    global current_request
    current_request = context.aws_request_id
    time.sleep(0.6)
    return {"pid": os.getpid(), "init_pid": INIT_PID, "connection_owner": CONNECTION_OWNER,
            "saw_own_request": current_request == context.aws_request_id, "seed": SEED}
"""


@needs_root
@pytest.mark.parametrize("mode", concurrency.MODES)
def test_by_default_each_concurrent_invoke_has_a_process_and_an_init_of_its_own(
    mode: str, emulator: Start, task_root: TaskRoot
) -> None:
    """The managed Python runtime's promise for managed instances, kept by default; the opt-in modes share."""
    root = task_root({"app.py": STATEFUL})
    with emulator(root, env={"PYLAMBDA_CONCURRENCY_MODE": mode}, max_concurrency=8) as em:
        invoke_all(em, [{}])  # the runtime is up
        rounds = [invoke_all(em, [{}] * 8) for _ in range(3)]
    answers = [answer for round_ in rounds for answer in round_]
    crossed = sum(not answer["saw_own_request"] for answer in answers)
    initialised_elsewhere = sum(answer["init_pid"] != answer["pid"] for answer in answers)
    connection_elsewhere = sum(answer["connection_owner"] != answer["pid"] for answer in answers)
    processes = [len({answer["pid"] for answer in round_}) for round_ in rounds]
    assert initialised_elsewhere == connection_elsewhere == 0  # every worker imports the handler itself
    if mode == "process":  # what awslambdaric gives: 0, 0 and 8
        assert crossed == 0
        assert processes == [8, 8, 8]
        assert len({answer["seed"] for answer in answers}) == 8  # random's state too is each process's own
    else:  # threads of one worker share its module state: the duty the opt-in modes take on
        assert processes == [concurrency.worker_count(8, mode)] * 3
        assert len({answer["seed"] for answer in answers}) == concurrency.worker_count(8, mode)


@pytest.fixture(scope="module")
def official_layer(bundled_build_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled layer with awslambdaric as its bootstrap, for the emulator's managed-instances mode."""
    layer = baseline.layer(bundled_build_dir / "layer", tmp_path_factory.mktemp("official") / "layer")
    readable_by_all(layer.parent)
    return layer


@needs_root
@pytest.mark.parametrize(
    ("files", "env"),
    [
        ({"app.py": "raise RuntimeError('no config')\ndef handler(e, c):\n    return 1\n"}, {}),
        ({"app.py": STATEFUL}, {"AWS_LAMBDA_CONCURRENCY_MODE": "threads"}),
    ],
    ids=["the module raises at import", "no such concurrency mode"],
)
def test_a_failed_init_in_managed_instances_ends_the_runtime_as_awslambdaric_does(
    files: dict[str, str], env: dict[str, str], bundled_build_dir: Path, official_layer: Path, task_root: TaskRoot
) -> None:
    root = task_root(files)
    answers, logs = {}, {}
    for name, layer in (("pylambda", bundled_build_dir / "layer"), ("awslambdaric", official_layer)):
        with Emulator(layer / "bootstrap", root, env=env, max_concurrency=8) as em:
            answers[name] = body(em.invoke("{}"))
            assert em._process is not None
            if name == "pylambda" or not env:  # (awslambdaric knows no such setting: it serves)
                em._process.wait(timeout=10)  # the emulator stops once the runtime has failed its init
            logs[name] = em.logs()
    if not env:  # the emulator's own answer, the same for both
        assert answers["pylambda"] == answers["awslambdaric"] == {"errorType": "Runtime.Unknown"}
        assert logs["pylambda"].count('"errorMessage": "no config"') >= 1
    else:  # awslambdaric has no such setting; pylambda refuses it before any worker starts
        assert answers["pylambda"] == {"errorType": "Runtime.InvalidConcurrencyMode"}
        assert "AWS_LAMBDA_CONCURRENCY_MODE='threads' is not one of process, thread, hybrid" in logs["pylambda"]
    assert "Traceback" not in logs["pylambda"]


FAILING = """
import logging
logger = logging.getLogger("orders")

def handler(event, context):
    logger.warning("order %s looked up", event["n"])
    if event["n"] == 1:
        raise LookupError(f"no order {event['n']}")
    return {"n": event["n"]}
"""


@needs_root
def test_logs_in_managed_instances_are_what_awslambdaric_writes(
    bundled_build_dir: Path, official_layer: Path, task_root: TaskRoot
) -> None:
    """The mode sets AWS_LAMBDA_LOG_FORMAT=json; each record and error report is one JSON line, field for field."""
    root = task_root({"app.py": FAILING})
    lines = {}
    for name, layer in (("pylambda", bundled_build_dir / "layer"), ("awslambdaric", official_layer)):
        with Emulator(
            layer / "bootstrap", root, env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.13"}, max_concurrency=4
        ) as em:
            answers = invoke_all(em, [{"n": 0}, {"n": 1}])
            logs = em.wait_for_output('"errorType": "LookupError"')
        records = [json.loads(line) for line in logs.splitlines() if line.startswith('{"timestamp"')]
        for record in records:
            assert record.pop("requestId") and record.pop("timestamp")
        lines[name] = sorted(records, key=json.dumps)
        assert answers[1]["errorType"] == "LookupError"
    assert lines["pylambda"] == lines["awslambdaric"]
    assert len(lines["pylambda"]) == 3  # two records and the failed invoke's report


def workers_of(supervisor: int) -> set[int]:
    """The runtime's worker processes: the children of the process the emulator started."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return {int(pid) for pid in children}


@needs_root
def test_a_killed_worker_fails_its_invoke_and_is_replaced_and_every_slot_serves_again(
    emulator: Start, task_root: TaskRoot
) -> None:
    root = task_root({"app.py": CONCURRENT})
    with emulator(root, "app.handler", timeout=2, max_concurrency=8) as em:
        invoke_all(em, [{"n": -1, "sleep": 0.3}] * 8)  # every worker has run its init
        supervisor = em.runtime_pid()
        assert supervisor is not None
        before = workers_of(supervisor)
        with ThreadPoolExecutor(1) as pool:
            doomed = pool.submit(invoke_all, em, [{"n": 0, "sleep": 30}])
            logs = em.wait_for_output('"start 0 in ')
            victim = int(logs.split('"start 0 in ')[1].split('"')[0])
            os.kill(victim, signal.SIGKILL)
            [failed] = doomed.result(timeout=20)
        deadline = time.monotonic() + 5
        while len(workers_of(supervisor)) < len(before) and time.monotonic() < deadline:
            time.sleep(0.05)
        after = workers_of(supervisor)
        first = invoke_all(em, [{"n": n, "sleep": 0.2} for n in range(1, 9)])
        then = invoke_all(em, [{"n": n, "sleep": 0.2} for n in range(9, 17)])
        logs = em.wait_for_output("starting another")
        assert em.runtime_pid() == supervisor  # the runtime itself was never restarted
    assert failed == {
        "errorMessage": "Runtime exited with error: signal: killed",
        "errorType": "Runtime.ExitError",
        "requestId": failed["requestId"],
        "stackTrace": [],
    }
    assert victim in before and victim not in after
    assert len(after) == len(before), "the killed worker was not replaced"
    # The supervisor kept the connections of the killed worker's idle slots
    # open: the invokes Lambda hands them are served by its replacement.
    assert sorted(a["n"] for a in first) == list(range(1, 9)), first
    assert sorted(a["n"] for a in then) == list(range(9, 17))
    assert {a["pid"] for a in first + then} <= after
    assert f"pylambda: worker {victim} ended (signal: killed); starting another" in logs


@needs_root
def test_sigterm_reaches_every_worker_and_runs_their_atexit_hooks(emulator: Start, task_root: TaskRoot) -> None:
    root = task_root({"app.py": CONCURRENT})
    with emulator(root, "app.handler", max_concurrency=8) as em:
        served = invoke_all(em, [{"n": n} for n in range(8)])  # every worker has run its init
        supervisor = em.runtime_pid()
        assert supervisor is not None
        workers = workers_of(supervisor)
        assert {answer["pid"] for answer in served} == workers
        os.kill(supervisor, signal.SIGTERM)
        assert em._process is not None
        em._process.wait(timeout=5)  # the emulator stops once the runtime has exited
        logs = em.logs()
    assert {f"atexit hook ran in {pid}" for pid in workers} <= set(logs.splitlines())
    assert f"atexit hook ran in {supervisor}" not in logs  # it served no invoke
    assert "Traceback" not in logs


LOGGING = """
import logging, os, time
logging.getLogger().setLevel(logging.INFO)

def handler(event, context):
    print(f"printed by {os.getpid()} for {event['n']}")
    logging.warning("two lines from %s\\nfor %s", os.getpid(), event["n"])
    time.sleep(0.5)  # the other worker takes the next event
    return {"pid": os.getpid(), "n": event["n"]}
"""


def test_with_a_log_socket_each_worker_sends_its_output_on_connections_of_its_own(
    bootstrap: Path, bare_python_dir: Path, tmp_path: Path
) -> None:
    """Lambda Managed Instances hand the runtime a Unix socket for its workers' output; the emulator does not."""
    import socket
    import struct
    import subprocess
    import threading

    from tests.scripted_api import ScriptedAPI, runtime_environment

    path = str(tmp_path / "logs.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    received: list[tuple[int, bytearray]] = []  # (the peer's pid, what it sent), one per connection

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            pid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            data = bytearray()
            received.append((pid, data))
            threading.Thread(
                target=lambda c=connection, d=data: [d.extend(b) for b in iter(lambda: c.recv(65536), b"")], daemon=True
            ).start()

    threading.Thread(target=accept, daemon=True).start()
    api = ScriptedAPI([{"body": json.dumps({"n": n}).encode()} for n in range(2)])
    threading.Thread(target=api.serve_forever, daemon=True).start()
    (tmp_path / "app.py").write_text(LOGGING)
    env = runtime_environment(
        api, bare_python_dir, tmp_path, AWS_LAMBDA_MAX_CONCURRENCY="2", _LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET=path
    )
    try:
        done = subprocess.run([str(bootstrap)], env=env, capture_output=True, timeout=30, check=False)
    finally:
        api.shutdown()
        api.server_close()
        listener.close()
    # By event: the answers may come back in either order.
    served = [answer["pid"] for answer in sorted((json.loads(body) for body in api.bodies), key=lambda a: a["n"])]
    assert len(set(served)) == 2, (served, done.stdout, done.stderr)  # two workers, one event each
    by_pid: dict[int, list[bytes]] = {}
    for pid, data in received:
        by_pid.setdefault(pid, []).append(bytes(data))
    assert set(by_pid) == set(served)  # the workers connect, the supervisor does not
    assert all(len(connections) == 2 for connections in by_pid.values())  # stdout and stderr, each its own
    for n, pid in enumerate(served):
        output = b"".join(by_pid[pid])
        assert f"printed by {pid} for {n}\n".encode() in output
        # One line, so one event: the record's line break written as \r.
        assert f"\ttwo lines from {pid}\rfor {n}\n".encode() in output
    assert b"printed by" not in done.stdout  # nothing of the workers' output on the runtime's own stdout
