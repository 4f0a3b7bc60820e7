"""The benchmark runs end to end (tiny counts): it must keep working, whatever numbers it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pylambda import concurrency

from tests.conftest import ROOT


def test_comparison_benchmark_runs_all_contestants_and_writes_its_table(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--interpreters", "standin"]
    command += ["--cold", "1", "--invokes", "20", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "latest.json").read_text())
    table = document["interpreters"]["standin"]
    assert set(table["cold start CPU (ms)"]) == {"pylambda", "awslambdaric", "http.client floor"}
    assert set(table["with boto3: cold start CPU (ms)"]) == {"pylambda", "awslambdaric"}
    assert set(table["modules after the first invoke"]) == {"pylambda", "awslambdaric"}
    assert all(value > 0 for row in table.values() for value in row.values())
    assert document["where the cold start goes (ms)"]["standin"]
    assert "| cold start to first response (ms) |" in (tmp_path / "latest.md").read_text()
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(os.getuid() != 0, reason="the emulator's managed-instances mode needs a mount namespace (root)")
def test_concurrency_benchmark_runs_every_contestant_and_measures_their_memory(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "concurrency.py"), "--seconds", "0.3"]
    command += ["--rounds", "1", "--bursts", "1", "--slots", "8"]  # one level: the smoke shows it runs, not how fast
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "concurrency.json").read_text())
    rows = document["cases"]
    assert [(row["handler"], row["concurrency"]) for row in rows] == [("sleep 100 ms", 8), ("burn 20 ms CPU", 8)]
    for row in rows:  # a supervisor and its workers; awslambdaric's parent and a process per slot
        slots = row["concurrency"]
        assert row["awslambdaric"]["processes"] == slots + 1
        assert row["pylambda"]["processes"] == slots + 1
        assert row["pylambda hybrid"]["processes"] == concurrency.worker_count(slots, "hybrid") + 1
        assert all(
            result["no free slot"] >= 0 and result["invokes/s"] > 0
            for result in row.values()
            if isinstance(result, dict)
        )
    memory = document["boto3 at 8 slots"]
    assert memory["pylambda"]["processes"] == memory["awslambdaric"]["processes"] == 9
    assert all(len(seconds) == 1 and min(seconds) > 0.5 for seconds in document["bursts"].values())


def test_web_apps_benchmark_runs_the_four_contestants_on_the_fastapi_example(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "web_apps.py"), "--cold", "1", "--requests", "10"]
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "web_apps.json").read_text())
    contestants = {
        "pylambda native",
        "Mangum on pylambda",
        "Mangum on awslambdaric",
        "Mangum on awslambdaric, zipped as sam build does",
    }
    for metric in ("cold start CPU (ms)", "peak RSS after a cold start (MB)", "CPU per request (µs)"):
        assert set(results[metric]) == contestants
        assert all(value > 0 for value in results[metric].values())
    assert "| cold start CPU (ms) |" in (tmp_path / "web_apps.md").read_text()


def test_dependencies_benchmark_runs_both_ways_of_shipping_a_function(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "dependencies.py"), "--interpreters", "standin"]
    command += ["--functions", "powertools", "--cold", "1", "--invokes", "10", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "dependencies.json").read_text())["standin"]["powertools"]
    ways = {"managed way (awslambdaric, sam build's zip)", "pylambda way (runtime + dependency layer)"}
    for metric in ("cold start CPU (ms)", "peak RSS after a cold start (MB)", "CPU per warm invoke (µs)"):
        assert set(results[metric]) == ways
        assert all(value > 0 for value in results[metric].values())
    assert "| powertools | cold start CPU (ms) |" in (tmp_path / "dependencies.md").read_text()
