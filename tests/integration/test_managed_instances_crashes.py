"""Managed instances: a handler that ends its process costs only that process's invokes, and they fail at once.

Under the emulator's managed-instances mode with 8 slots, one invoke dies
while 6 others are in flight. The dying invoke, and any invoke that shared its
worker process, must be answered within seconds (not after the function's
20 s timeout); every other invoke succeeds; and afterwards all 8 slots serve.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pylambda import concurrency

from pylambda_build.emulator import Emulator
from tests.conftest import TEST_PYTHON

Start = Callable[..., Emulator]
TaskRoot = Callable[[Mapping[str, str]], Path]

HANDLERS = """
import asyncio, ctypes, os, signal, sys, time

def die(how):
    if how == "sys.exit":
        sys.exit(4)
    if how == "os._exit":
        os._exit(3)
    if how == "SIGKILL":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "segfault":
        ctypes.string_at(0)

def handler(event, context):
    if "die" in event:
        die(event["die"])
    time.sleep(event.get("sleep", 0))
    return {"n": event["n"], "pid": os.getpid()}

async def async_handler(event, context):
    await asyncio.sleep(event.get("sleep", 0))
    if "die" in event:
        die(event["die"])
    return {"n": event["n"], "pid": os.getpid()}
"""

TIMEOUT = 20  # the function's timeout: no answer may wait for it
PROMPT = 3.0  # how soon a failed invoke must be answered

needs_root = pytest.mark.skipif(os.getuid() != 0, reason="managed-instances mode needs a mount namespace (root)")


def timed_invoke(em: Emulator, event: dict[str, Any]) -> tuple[Any, float]:
    """(the answer, seconds it took); the emulator's Runtime.Unavailable (a slot on its way back to `next`) is
    retried, as a caller's SDK would."""
    started = time.monotonic()
    for _ in range(100):
        answer = json.loads(em.invoke(json.dumps(event), timeout=TIMEOUT + 10).body)
        if answer != {"errorType": "Runtime.Unavailable"}:
            return answer, time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("no slot came free")


def invoke_at_once(em: Emulator, count: int) -> list[Any]:
    """The answers to ``count`` invokes sent at once."""
    with ThreadPoolExecutor(count) as pool:
        return [answer for answer, _ in pool.map(timed_invoke, [em] * count, [{"n": n} for n in range(count)])]


# Hybrid mode's crash handling is the supervisor's, the same code on every Python: it runs on this machine's
# Python, and the matrix of Debian's Pythons (PYLAMBDA_TEST_PYTHON) runs the default, process mode.
MODES = [
    "process",
    pytest.param("hybrid", marks=pytest.mark.skipif(TEST_PYTHON is not None, reason="on this machine's Python only")),
]


@needs_root
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("handler", ["app.handler", "app.async_handler"])
@pytest.mark.parametrize("how", ["sys.exit", "os._exit", "SIGKILL", "segfault"])
def test_a_dying_invoke_is_answered_at_once_and_costs_only_its_own_process(
    how: str, handler: str, mode: str, emulator: Start, task_root: TaskRoot
) -> None:
    env = {"PYLAMBDA_CONCURRENCY_MODE": mode}
    with emulator(task_root({"app.py": HANDLERS}), handler, env=env, timeout=TIMEOUT, max_concurrency=8) as em:
        timed_invoke(em, {"n": -1})  # the runtime is up
        with ThreadPoolExecutor(7) as pool:
            beside = [pool.submit(timed_invoke, em, {"n": n, "sleep": 1.5}) for n in range(6)]
            time.sleep(0.5)  # the six are in their handlers
            dying, dying_took = pool.submit(timed_invoke, em, {"n": 99, "die": how, "sleep": 0.1}).result()
            others = [future.result() for future in beside]
        after = invoke_at_once(em, 8)
        logs = em.logs()

    assert dying_took < PROMPT, f"the dying invoke took {dying_took:.1f} s"
    if how == "sys.exit":  # the handler's own exception: the process lives on
        assert (dying["errorType"], dying["errorMessage"]) == ("SystemExit", "4"), dying
    else:
        assert dying["errorType"] == "Runtime.ExitError", dying
        expected = {"os._exit": "exit status 3", "SIGKILL": "signal: killed", "segfault": "signal: segmentation fault"}
        assert dying["errorMessage"] == f"Runtime exited with error: {expected[how]}"
        assert "; starting another" in logs
    failed = [answer for answer, _ in others if "n" not in answer]
    # Only an invoke that shared the dying worker process may fail, and just as fast.
    shared = 0 if how == "sys.exit" else concurrency.shares(8, concurrency.worker_count(8, mode))[0] - 1
    assert len(failed) <= shared, others
    assert all(answer["errorType"] == "Runtime.ExitError" for answer in failed), failed
    assert all(took < 1.5 + PROMPT for _, took in others), [took for _, took in others]
    assert sorted(answer.get("n", -1) for answer in after) == list(range(8)), after


@needs_root
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
@pytest.mark.parametrize("mode", MODES)
def test_with_one_usable_core_a_crash_still_costs_only_its_own_invoke(
    mode: str, emulator: Start, task_root: TaskRoot
) -> None:
    """One core: a process per slot still (the default), or one worker process of threads (hybrid); either way
    the supervisor answers for a worker that dies and replaces it."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # inherited by the emulator and the runtime
    env = {"PYLAMBDA_CONCURRENCY_MODE": mode}
    try:
        with emulator(task_root({"app.py": HANDLERS}), env=env, timeout=TIMEOUT, max_concurrency=4) as em:
            timed_invoke(em, {"n": -1})
            # Let the slot that answered get back to `next` (one core: it waits for the GIL) before a handler
            # kills the process: the window between sending `next` and marking it is documented, not tested here.
            time.sleep(0.3)
            supervisor = em.runtime_pid()
            dying, took = timed_invoke(em, {"n": 99, "die": "os._exit"})
            after = invoke_at_once(em, 4)
            assert em.runtime_pid() == supervisor  # the runtime itself lives on
            logs = em.logs()
    finally:
        os.sched_setaffinity(0, cores)
    assert took < PROMPT
    assert dying["errorMessage"] == "Runtime exited with error: exit status 3", (dying, logs[-3000:])
    assert sorted(answer.get("n", -1) for answer in after) == list(range(4)), (after, logs[-3000:])
    if mode == "hybrid":  # one worker serves every slot (in process mode, one a slot; the replacement may
        assert len({answer["pid"] for answer in after}) == 1  # still be in its init when these four arrive)
    assert supervisor not in {answer["pid"] for answer in after}  # and it is not the supervisor
