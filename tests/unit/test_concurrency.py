"""How the slots of Lambda Managed Instances are spread over processes: cores, shares and the GIL."""

from __future__ import annotations

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
    assert concurrency.worker_count(slot_count) == workers


def test_an_interpreter_without_a_gil_stays_one_process_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert concurrency.worker_count(8) == 1
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert concurrency.worker_count(8) == 8


@pytest.mark.parametrize(
    ("slot_count", "workers", "expected"), [(8, 2, [4, 4]), (8, 3, [3, 3, 2]), (5, 2, [3, 2]), (32, 2, [16, 16])]
)
def test_slots_are_shared_as_evenly_as_they_divide(slot_count: int, workers: int, expected: list[int]) -> None:
    assert concurrency.shares(slot_count, workers) == expected
