"""Multi-concurrency (Lambda Managed Instances): pylambda's workers of threads against awslambdaric's processes.

    ./dev python benchmarks/concurrency.py [--seconds 3] [--out benchmarks/results]   (as root)

Runs the emulator in its managed-instances mode (AWS_LAMBDA_MAX_CONCURRENCY)
with each runtime as /opt/bootstrap, on the same bundled interpreter, and
drives it with as many client threads as there are slots, for --seconds per
runtime at each concurrency, the two runtimes taking turns (see compare).
Handlers: one that sleeps 100 ms (waiting on I/O, as most Lambda handlers do)
at concurrency 1, 8 and 32, and one that does about 20 ms of CPU work at
concurrency 8. Reports throughput (invokes per second), the emulator's "no
free slot" answers (Runtime.Unavailable: every slot busy or not back at
`next` yet; the client tries again at once, so the count measures how late
slots come back), and the runtime's total memory: the sum of Pss over its
process tree, so pages that forked workers share count once. Last, the wall
time of 8 invokes of a 0.5 s sleep sent at once to 8 slots.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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

def naps(event, context):
    time.sleep(0.5)
    return {"ok": True}

def burns(event, context):
    # A fixed amount of work (about 20 ms of one core here), not a fixed time:
    # what switching threads or processes costs shows in the throughput.
    total = 0
    for number in range(370_000):
        total += number * number
    return {"ok": total > 0}
"""
CASES = [
    ("sleep 100 ms", "app.sleeps", 1),
    ("sleep 100 ms", "app.sleeps", 8),
    ("sleep 100 ms", "app.sleeps", 32),
    ("burn 20 ms CPU", "app.burns", 8),
]


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


def drive(emulator: Emulator, clients: int, seconds: float) -> tuple[int, int, float]:
    """Invokes served and "no free slot" answers, with ``clients`` threads each invoking back to back; and the time.

    A client that gets Runtime.Unavailable (no slot back at `next` yet) tries
    again at once, as a busy caller would: the count says how late slots
    come back, in retries.
    """
    served = [0] * clients
    unavailable = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        while time.monotonic() < stop:
            if b"Runtime.Unavailable" in emulator.invoke("{}").body:
                unavailable[index] += 1
            else:
                served[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(served), sum(unavailable), time.monotonic() - started


def compare(emulators: dict[str, Emulator], clients: int, seconds: float, rounds: int) -> dict[str, tuple[float, int]]:
    """Invokes per second and "no free slot" answers for each runtime, driven in turns.

    The machines this runs on are shared: the runtimes take turns of
    ``seconds / rounds``, in alternating order, so that a busy minute of a
    neighbour weighs on both rather than on one.
    """
    totals = {name: [0, 0, 0.0] for name in emulators}
    order = list(emulators)
    for _ in range(rounds):
        for name in order:
            served, unavailable, elapsed = drive(emulators[name], clients, seconds / rounds)
            totals[name][0] += served
            totals[name][1] += unavailable
            totals[name][2] += elapsed
        order.reverse()
    return {name: (served / elapsed, int(unavailable)) for name, (served, unavailable, elapsed) in totals.items()}


def burst(emulator: Emulator, count: int) -> float:
    """Seconds until ``count`` invokes sent at once have all been answered (a "no free slot" is tried again)."""

    def one() -> None:
        while b"Runtime.Unavailable" in emulator.invoke("{}").body:
            time.sleep(0.005)

    threads = [threading.Thread(target=one) for _ in range(count)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="driving time per case (default: 3)")
    parser.add_argument("--rounds", type=int, default=6, help="turns each runtime takes per case (default: 6)")
    parser.add_argument("--bursts", type=int, default=3, help="tries of the 8 x 0.5 s burst (default: 3)")
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
        layers["awslambdaric"] = baseline.layer(layers["pylambda"], work / "awslambdaric")
        task_root = work / "task"
        task_root.mkdir(mode=0o755)
        (task_root / "app.py").write_text(HANDLERS)
        for label, handler, slots in CASES:
            row: dict[str, object] = {"handler": label, "concurrency": slots}
            with contextlib.ExitStack() as stack:
                emulators = {
                    name: stack.enter_context(Emulator(layer / "bootstrap", task_root, handler, max_concurrency=slots))
                    for name, layer in layers.items()
                }
                for emulator in emulators.values():
                    drive(emulator, slots, 0.5)  # warm-up: every slot started and served once
                for name, (rate, unavailable) in compare(emulators, slots, args.seconds, args.rounds).items():
                    row[f"{name} invokes/s"], row[f"{name} no free slot"] = rate, unavailable
                    process = emulators[name]._process
                    pids = process_tree(process.pid if process else 0)
                    row[f"{name} processes"] = len(pids)
                    row[f"{name} PSS MB"] = pss_mb(pids)
            rows.append(row)
        bursts: dict[str, list[float]] = {}
        for name, layer in layers.items():
            with Emulator(layer / "bootstrap", task_root, "app.naps", max_concurrency=8) as emulator:
                burst(emulator, 8)  # warm-up
                bursts[name] = sorted(burst(emulator, 8) for _ in range(args.bursts))

    lines = [
        "| handler | concurrency | pylambda invokes/s | awslambdaric invokes/s | throughput ratio "
        '| "no free slot" answers (pylambda, awslambdaric) '
        "| pylambda PSS (MB, processes) | awslambdaric PSS (MB, processes) | PSS ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ours, theirs = float(row["pylambda invokes/s"]), float(row["awslambdaric invokes/s"])  # type: ignore[arg-type]
        our_pss, their_pss = float(row["pylambda PSS MB"]), float(row["awslambdaric PSS MB"])  # type: ignore[arg-type]
        lines.append(
            f"| {row['handler']} | {row['concurrency']} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x "
            f"| {row['pylambda no free slot']}, {row['awslambdaric no free slot']} "
            f"| {our_pss:.1f} ({row['pylambda processes']}) | {their_pss:.1f} ({row['awslambdaric processes']}) "
            f"| {our_pss / their_pss:.2f}x |"
        )
    lines.append("")
    lines.append("8 invokes of a handler that sleeps 0.5 s, sent at once to 8 slots: all answered after ")
    for name, seconds in bursts.items():
        lines[-1] += f"{name} {', '.join(f'{s:.2f}' for s in seconds)} s; "
    lines[-1] = lines[-1].rstrip("; ")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concurrency.md").write_text(text + "\n")
    (args.out / "concurrency.json").write_text(json.dumps({"cases": rows, "bursts": bursts}, indent=2) + "\n")


if __name__ == "__main__":
    main()
