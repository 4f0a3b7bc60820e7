"""How the slots of Lambda Managed Instances are spread over processes: cores, shares and the GIL."""

from __future__ import annotations

import socket
import sys

import pytest
from pylambda import concurrency


def test_slots_come_from_max_concurrency_and_bad_values_mean_one() -> None:
    assert concurrency.slots({"AWS_LAMBDA_MAX_CONCURRENCY": "32"}) == 32
    assert concurrency.slots({}) == 1
    assert concurrency.slots({"AWS_LAMBDA_MAX_CONCURRENCY": "many"}) == 1
    assert concurrency.slots({"AWS_LAMBDA_MAX_CONCURRENCY": "0"}) == 1


@pytest.mark.parametrize(("cores", "slot_count", "workers"), [(2, 8, 4), (2, 32, 4), (4, 2, 2), (1, 8, 1), (8, 8, 8)])
def test_two_workers_per_usable_core_one_with_one_core_and_never_more_than_slots(
    cores: int, slot_count: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.delattr(sys, "_is_gil_enabled", raising=False)
    assert concurrency.worker_count(slot_count, "hybrid") == workers


@pytest.mark.parametrize("slot_count", [2, 8, 32])
def test_process_mode_gives_every_slot_a_process_and_thread_mode_one_for_all(
    slot_count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda pid: {0, 1})
    assert concurrency.worker_count(slot_count, "process") == slot_count
    assert concurrency.worker_count(slot_count, "thread") == 1


def test_the_mode_defaults_to_process_and_a_value_that_is_no_mode_is_an_init_error() -> None:
    from pylambda.errors import RuntimeFault

    assert concurrency.mode({}) == "process"
    assert concurrency.mode({"PYLAMBDA_CONCURRENCY_MODE": " Thread "}) == "thread"
    assert concurrency.mode({"PYLAMBDA_CONCURRENCY_MODE": ""}) == "process"
    with pytest.raises(RuntimeFault) as caught:
        concurrency.mode({"PYLAMBDA_CONCURRENCY_MODE": "threads"})
    assert caught.value.error_type == "Runtime.InvalidConcurrencyMode"
    assert "'threads' is not one of process, hybrid, thread" in caught.value.message


def test_an_interpreter_without_a_gil_stays_one_process_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert concurrency.worker_count(8, "hybrid") == 1
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert concurrency.worker_count(8, "hybrid") == 8


@pytest.mark.parametrize(
    ("slot_count", "workers", "expected"), [(8, 2, [4, 4]), (8, 3, [3, 3, 2]), (5, 2, [3, 2]), (32, 2, [16, 16])]
)
def test_slots_are_shared_as_evenly_as_they_divide(slot_count: int, workers: int, expected: list[int]) -> None:
    assert concurrency.shares(slot_count, workers) == expected


def test_slot_table_opening_on_an_unreachable_api_is_a_runtime_api_error_not_a_traceback() -> None:
    from pylambda.runtime_api import RuntimeAPIError
    from pylambda.supervisor import SlotTable

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RuntimeAPIError, match=r"cannot connect to 127\.0\.0\.1"):
        SlotTable(f"127.0.0.1:{port}", 2, 1)


def test_a_dead_workers_slots_give_back_the_ids_it_was_serving_and_only_those() -> None:
    from pylambda.supervisor import SlotTable

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        table = SlotTable(f"127.0.0.1:{listener.getsockname()[1]}", 4, 2)
        serving, waiting, too_long = table.slot(0), table.slot(1), table.slot(2)
        serving.taken("req-1")
        waiting.taken("req-2")
        waiting.waiting()  # answered req-2, then asked for the next one
        too_long.taken("x" * 200)
        table.mark_runtime_exit(1)
        assert table.is_runtime_exit(1) and not table.is_runtime_exit(0)
        assert table.release(0, 0, 2) == ["req-1"]
        assert table.release(1, 2, 2) == []  # an id too long to track cannot be failed
        assert not table.is_runtime_exit(1)
        assert table.slot(1).resumes_next()  # its replacement reads the answer to that `next`
        assert not table.slot(0).resumes_next()
