"""How the slots of Lambda Managed Instances are spread over processes: AWS's modes, vCPUs and shares."""

from __future__ import annotations

import socket

import pytest
from pylambda import concurrency


def test_slots_come_from_max_concurrency_and_bad_values_mean_one() -> None:
    assert concurrency.slots({"AWS_LAMBDA_MAX_CONCURRENCY": "32"}) == 32
    assert concurrency.slots({}) == 1
    assert concurrency.slots({"AWS_LAMBDA_MAX_CONCURRENCY": "many"}) == 1
    assert concurrency.slots({"AWS_LAMBDA_MAX_CONCURRENCY": "0"}) == 1


@pytest.mark.parametrize(("vcpus", "slot_count", "workers"), [(2, 8, 2), (2, 32, 2), (4, 2, 4), (1, 8, 1), (8, 8, 8)])
def test_hybrid_runs_a_worker_per_vcpu_as_aws_python_images_do(
    vcpus: int, slot_count: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda pid: set(range(vcpus)))
    assert concurrency.worker_count(slot_count, "hybrid") == workers


@pytest.mark.parametrize("slot_count", [2, 8, 32])
def test_process_mode_gives_every_slot_a_process_and_thread_mode_one_for_all(
    slot_count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda pid: {0, 1})
    assert concurrency.worker_count(slot_count, "process") == slot_count
    assert concurrency.worker_count(slot_count, "thread") == 1


# AWS's values and arithmetic (its Python images' AWS_LAMBDA_CONCURRENCY_MODE): N slots, K vCPUs.
# process: N processes of one thread; thread: one process of N threads; hybrid: K processes of
# max(1, floor(N / K)) threads each, a remainder of slots unused.
AWS_TOPOLOGIES = [
    ("process", 8, 2, [1] * 8),
    ("thread", 8, 2, [8]),
    ("hybrid", 8, 2, [4, 4]),
    ("hybrid", 9, 2, [4, 4]),
    ("hybrid", 32, 2, [16, 16]),
    ("hybrid", 16, 3, [5, 5, 5]),
    ("hybrid", 2, 4, [1, 1, 1, 1]),
]


@pytest.mark.parametrize(("chosen", "slot_count", "vcpus", "threads"), AWS_TOPOLOGIES)
def test_each_mode_lays_out_processes_and_threads_with_aws_arithmetic(
    chosen: str, slot_count: int, vcpus: int, threads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda pid: set(range(vcpus)))
    assert concurrency.shares(slot_count, concurrency.worker_count(slot_count, chosen)) == threads


@pytest.mark.parametrize("variable", ["AWS_LAMBDA_CONCURRENCY_MODE", "PYLAMBDA_CONCURRENCY_MODE"])
def test_the_mode_answers_to_aws_name_and_its_alias_and_defaults_to_process(variable: str) -> None:
    from pylambda.errors import RuntimeFault

    assert concurrency.mode({}) == "process"
    for value in ("process", "thread", "hybrid"):
        assert concurrency.mode({variable: value}) == value
    assert concurrency.mode({variable: " Thread "}) == "thread"
    assert concurrency.mode({variable: ""}) == "process"
    with pytest.raises(RuntimeFault) as caught:
        concurrency.mode({variable: "threads"})
    assert caught.value.error_type == "Runtime.InvalidConcurrencyMode"
    assert f"{variable}='threads' is not one of process, thread, hybrid" in caught.value.message
    assert "AWS_LAMBDA_CONCURRENCY_MODE, or its alias PYLAMBDA_CONCURRENCY_MODE" in caught.value.message


def test_aws_name_wins_over_the_alias() -> None:
    both = {"AWS_LAMBDA_CONCURRENCY_MODE": "thread", "PYLAMBDA_CONCURRENCY_MODE": "hybrid"}
    assert concurrency.mode(both) == "thread"
    assert concurrency.mode({"AWS_LAMBDA_CONCURRENCY_MODE": " ", "PYLAMBDA_CONCURRENCY_MODE": "hybrid"}) == "hybrid"


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
