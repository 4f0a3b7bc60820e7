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

from buildlib.emulator import Emulator, InvokeResult

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
@pytest.mark.parametrize("handler", ["app.handler", "app.async_handler"])
def test_slots_serve_invokes_at_once_with_their_own_request_ids_in_the_logs(
    handler: str, emulator: Start, task_root: TaskRoot
) -> None:
    root = task_root({"app.py": CONCURRENT})
    with emulator(root, handler, max_concurrency=8) as em:
        invoke_all(em, [{"n": -1, "sleep": 0}])  # the runtime is up
        started = time.monotonic()
        answers = invoke_all(em, [{"n": n} for n in range(8)])
        elapsed = time.monotonic() - started
        logs = em.wait_for_output('"end 7"')
    assert sorted(a["n"] for a in answers) == list(range(8))
    assert elapsed < 1.5, f"8 invokes of 0.3 s took {elapsed:.2f} s: not concurrent"
    # 8 invokes at once fill every slot, so every worker process serves some.
    assert len({a["pid"] for a in answers}) == concurrency.worker_count(8)
    if handler == "app.async_handler":  # one loop per worker process, whatever the invoke's thread
        assert len({(a["pid"], a["loop"]) for a in answers}) == concurrency.worker_count(8)
    records = [json.loads(line) for line in logs.splitlines() if line.startswith('{"timestamp"')]
    by_message = {record["message"]: record["requestId"] for record in records}
    for answer in answers:  # interleaved lines, each tagged with its own invoke
        assert by_message[f"start {answer['n']} in {answer['pid']}"] == answer["request_id"]
        assert by_message[f"end {answer['n']}"] == answer["request_id"]


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
        invoke_all(em, [{"n": -1, "sleep": 0}])  # the runtime is up
        supervisor = em.runtime_pid()
        assert supervisor is not None
        before = workers_of(supervisor)
        with ThreadPoolExecutor(1) as pool:
            doomed = pool.submit(em.invoke, json.dumps({"n": 0, "sleep": 30}))
            logs = em.wait_for_output('"start 0 in ')
            victim = int(logs.split('"start 0 in ')[1].split('"')[0])
            os.kill(victim, signal.SIGKILL)
            failed = doomed.result(timeout=20)
        deadline = time.monotonic() + 5
        while len(workers_of(supervisor)) < len(before) and time.monotonic() < deadline:
            time.sleep(0.05)
        after = workers_of(supervisor)
        first = invoke_all(em, [{"n": n, "sleep": 0.2} for n in range(1, 9)])
        then = invoke_all(em, [{"n": n, "sleep": 0.2} for n in range(9, 17)])
        logs = em.wait_for_output("starting another")
        assert em.runtime_pid() == supervisor  # the runtime itself was never restarted
    assert failed.json() == {
        "errorMessage": "Runtime exited with error: signal: killed",
        "errorType": "Runtime.ExitError",
        "requestId": failed.json()["requestId"],  # type: ignore[index]
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
        invoke_all(em, [{"n": -1, "sleep": 0}])
        supervisor = em.runtime_pid()
        assert supervisor is not None
        workers = workers_of(supervisor)
        os.kill(supervisor, signal.SIGTERM)
        assert em._process is not None
        em._process.wait(timeout=5)  # the emulator stops once the runtime has exited
        logs = em.logs()
    assert {f"atexit hook ran in {pid}" for pid in workers} <= set(logs.splitlines())
    assert f"atexit hook ran in {supervisor}" not in logs  # it served no invoke
    assert "Traceback" not in logs
