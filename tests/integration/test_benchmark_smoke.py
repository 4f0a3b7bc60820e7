"""The benchmark runs end to end (tiny counts): it must keep working, whatever numbers it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import build


def test_comparison_benchmark_runs_all_contestants_and_writes_its_table(tmp_path: Path) -> None:
    command = [sys.executable, str(build.ROOT / "benchmarks" / "compare.py"), "--cold", "1", "--invokes", "20"]
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "latest.json").read_text())
    table = document["runtimes"]
    assert len(document["imports"]) == 5
    assert set(table["cold start CPU (ms)"]) == {"pylambda", "awslambdaric", "urllib3 floor"}
    assert set(table["6 MB response CPU (ms)"]) == {"pylambda", "awslambdaric"}
    assert all(value > 0 for row in table.values() for value in row.values())
    assert "| cold start CPU (ms) |" in (tmp_path / "latest.md").read_text()
    assert (tmp_path / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
