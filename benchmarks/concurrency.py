"""Multi-concurrency (Lambda Managed Instances): pylambda's threads against awslambdaric's processes.

    ./dev python benchmarks/concurrency.py [--seconds 3] [--out benchmarks/results]   (as root)

Runs the emulator in its managed-instances mode (AWS_LAMBDA_MAX_CONCURRENCY)
with each runtime as /opt/bootstrap, on the same bundled interpreter, and
drives it with as many client threads as there are slots, for --seconds at
each concurrency. Handlers: one that sleeps 100 ms (waiting on I/O, as most
Lambda handlers do) at concurrency 1, 8 and 32, and one that burns 20 ms of
CPU at concurrency 8 (what threads cost a CPU-bound handler). Reports
throughput (invokes per second; the emulator's Runtime.Unavailable, a slot
not back at `next` yet, is retried and not counted) and the runtime's total
memory: the sum of Pss over its process tree, so pages that forked workers
share count once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import build
from buildlib import baseline, standin
from buildlib.emulator import Emulator

HANDLERS = """
import time

def sleeps(event, context):
    time.sleep(0.1)
    return {"ok": True}

def burns(event, context):
    end = time.thread_time() + 0.02  # this thread's own CPU time
    while time.thread_time() < end:
        pass
    return {"ok": True}
"""
CASES = [
    ("sleep 100 ms", "app.sleeps", 1),
    ("sleep 100 ms", "app.sleeps", 8),
    ("sleep 100 ms", "app.sleeps", 32),
    ("burn 20 ms CPU", "app.burns", 8),
]
RIC_BOOTSTRAP = """#!/bin/sh
# awslambdaric on the layer's interpreter, with only its own packages on the path.
root=${0%/*}
for python in "$root"/pylambda/python3.*/bin/python3; do :; done
PYTHONPATH=$root/awslambdaric exec "$python" -m awslambdaric "$_HANDLER"
"""


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def drive(emulator: Emulator, clients: int, seconds: float) -> float:
    """Invokes per second with ``clients`` threads each invoking back to back."""
    served = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        while time.monotonic() < stop:
            if b"Runtime.Unavailable" not in emulator.invoke("{}").body:
                served[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(served) / (time.monotonic() - started)


def ric_layer(layer: Path, into: Path) -> Path:
    """The same layer with awslambdaric as its bootstrap."""
    shutil.copytree(layer, into)
    (into / "bootstrap").write_text(RIC_BOOTSTRAP)
    (into / "bootstrap").chmod(0o755)
    baseline.packages(into / "awslambdaric")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="driving time per case (default: 3)")
    parser.add_argument("--python", help="interpreter source for the layer (default: the offline stand-in)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        work.chmod(0o755)
        layers = {"pylambda": work / "pylambda"}
        build.build_layer(
            layers["pylambda"],
            build.LayerSpec(
                # The offline stand-in was built on this machine, with a newer glibc than Lambda's.
                args.python or str(standin.make_tarball(work)),
                allow_newer_glibc=args.python is None,
            ),
        )
        layers["awslambdaric"] = ric_layer(layers["pylambda"], work / "awslambdaric")
        task_root = work / "task"
        task_root.mkdir(mode=0o755)
        (task_root / "app.py").write_text(HANDLERS)
        for label, handler, slots in CASES:
            row: dict[str, object] = {"handler": label, "concurrency": slots}
            for name, layer in layers.items():
                with Emulator(layer / "bootstrap", task_root, handler, max_concurrency=slots) as emulator:
                    drive(emulator, slots, 0.5)  # warm-up: every slot started and served once
                    row[f"{name} invokes/s"] = drive(emulator, slots, args.seconds)
                    pids = process_tree(emulator._process.pid if emulator._process else 0)
                    row[f"{name} processes"] = len(pids)
                    row[f"{name} PSS MB"] = pss_mb(pids)
            rows.append(row)

    lines = [
        "| handler | concurrency | pylambda invokes/s | awslambdaric invokes/s | throughput ratio "
        "| pylambda PSS (MB, processes) | awslambdaric PSS (MB, processes) | PSS ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ours, theirs = float(row["pylambda invokes/s"]), float(row["awslambdaric invokes/s"])  # type: ignore[arg-type]
        our_pss, their_pss = float(row["pylambda PSS MB"]), float(row["awslambdaric PSS MB"])  # type: ignore[arg-type]
        lines.append(
            f"| {row['handler']} | {row['concurrency']} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x "
            f"| {our_pss:.1f} ({row['pylambda processes']}) | {their_pss:.1f} ({row['awslambdaric processes']}) "
            f"| {our_pss / their_pss:.2f}x |"
        )
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concurrency.md").write_text(text + "\n")
    (args.out / "concurrency.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
