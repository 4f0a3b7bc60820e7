"""Multi-concurrency (Lambda Managed Instances): pylambda's two models against awslambdaric, side by side.

    ./dev python benchmarks/concurrency.py [--seconds 3] [--out benchmarks/results]   (as root)

Runs the emulator in its managed-instances mode (AWS_LAMBDA_MAX_CONCURRENCY)
with each contestant as /opt/bootstrap, on the same bundled interpreter:
awslambdaric (a process per slot), pylambda in its default model (a process
per slot, as the managed Python runtime defines it) and pylambda with
AWS_LAMBDA_CONCURRENCY_MODE=hybrid (a worker process of threads per vCPU).
It drives each with as many client threads as there are slots, for --seconds
per contestant at each concurrency, the contestants taking turns (see
compare). Handlers: one that sleeps 100 ms (waiting on I/O, as most Lambda
handlers do) and one that does about 20 ms of CPU work, at concurrency 8 and
32. Reports throughput (invokes per second), the emulator's "no free slot"
answers (Runtime.Unavailable: every slot busy or not back at `next` yet; the
client tries again at once, so the count measures how late slots come back),
and the runtime's total memory: the sum of Pss over its process tree, so
pages that forked workers share count once. Then the memory at 32 slots of a
handler that creates a boto3 client at import, once every process has served,
and the wall time of 8 invokes of a 0.5 s sleep sent at once to 8 slots.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pylambda_build import readable_by_all, standin
from pylambda_build.emulator import Emulator
from pylambda_build.layers import LayerSpec, build_layer
from testkit import baseline

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
BOTO3_HANDLER = """
import boto3

s3 = boto3.client("s3", region_name="us-east-1")


def handler(event, context):
    return {"ok": True}
"""
CASES = [
    ("sleep 100 ms", "app.sleeps", 8),
    ("sleep 100 ms", "app.sleeps", 32),
    ("burn 20 ms CPU", "app.burns", 8),
    ("burn 20 ms CPU", "app.burns", 32),
]
# The contestants: a layer, and the environment its runtime gets.
CONTESTANTS = {
    "awslambdaric": ("awslambdaric", {}),
    "pylambda": ("pylambda", {}),
    "pylambda hybrid": ("pylambda", {"AWS_LAMBDA_CONCURRENCY_MODE": "hybrid"}),
}


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


def measure_case(
    layers: dict[str, Path], task_root: Path, handler: str, slots: int, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Each contestant's invokes/s, "no free slot" answers, processes and PSS (MB) for one handler and concurrency."""
    results: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        emulators = {
            name: stack.enter_context(
                Emulator(layers[layer] / "bootstrap", task_root, handler, env=env, max_concurrency=slots)
            )
            for name, (layer, env) in CONTESTANTS.items()
        }
        for emulator in emulators.values():
            drive(emulator, slots, 1.0)  # warm-up: every slot started (and its init run) and served
        for name, (rate, unavailable) in compare(emulators, slots, args.seconds, args.rounds).items():
            pids = process_tree(emulators[name].pid())
            results[name] = {"invokes/s": rate, "no free slot": unavailable, "processes": len(pids)}
            results[name]["PSS MB"] = pss_mb(pids)
    return results


def idle_memory(layers: dict[str, Path], task_root: Path, slots: int) -> dict[str, dict[str, float]]:
    """Each contestant's processes and PSS (MB) at ``slots`` slots once every slot has served an invoke."""
    results: dict[str, dict[str, float]] = {}
    for name, (layer, env) in CONTESTANTS.items():
        with Emulator(
            layers[layer] / "bootstrap", task_root, "boto3_app.handler", env=env, max_concurrency=slots
        ) as em:
            served, _, _ = drive(em, slots, 3.0)  # every process has imported boto3 and made its client
            pids = process_tree(em.pid())
            if not served or not pids:
                raise RuntimeError(f"{name} served no invoke with boto3:\n{em.logs()[-3000:]}")
            results[name] = {"processes": len(pids), "PSS MB": pss_mb(pids)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="driving time per case (default: 3)")
    parser.add_argument("--rounds", type=int, default=6, help="turns each contestant takes per case (default: 6)")
    parser.add_argument("--bursts", type=int, default=3, help="tries of the 8 x 0.5 s burst (default: 3)")
    parser.add_argument("--python", help="interpreter source for the layer (default: the offline stand-in)")
    parser.add_argument(
        "--slots",
        default="8,32",
        help="comma-separated concurrency levels, from 8 and 32 (default: both); the memory case runs at the largest",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    levels = sorted({int(level) for level in args.slots.split(",")})

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        work.chmod(0o755)
        layers = {"pylambda": work / "pylambda"}
        build_layer(
            layers["pylambda"],
            LayerSpec(
                # The offline stand-in was built on this machine, with a newer glibc than Lambda's.
                args.python or str(standin.make_tarball(work)),
                allow_newer_glibc=args.python is None,
            ),
        )
        layers["awslambdaric"] = baseline.layer(layers["pylambda"], work / "awslambdaric")
        task_root = work / "task"
        task_root.mkdir(mode=0o755)
        (task_root / "app.py").write_text(HANDLERS)
        (task_root / "boto3_app.py").write_text(BOTO3_HANDLER)
        pin = f"boto3=={importlib.metadata.version('boto3')}"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"]
        subprocess.run([*pip, str(task_root), pin], check=True)
        readable_by_all(task_root)
        for label, handler, slots in [case for case in CASES if case[2] in levels]:
            print(f"concurrency: {label} at {slots}", file=sys.stderr)
            rows.append(
                {"handler": label, "concurrency": slots, **measure_case(layers, task_root, handler, slots, args)}
            )
        memory = idle_memory(layers, task_root, levels[-1])
        bursts: dict[str, list[float]] = {}
        for name, (layer, env) in CONTESTANTS.items():
            with Emulator(layers[layer] / "bootstrap", task_root, "app.naps", env=env, max_concurrency=8) as emulator:
                burst(emulator, 8)  # warm-up
                bursts[name] = sorted(burst(emulator, 8) for _ in range(args.bursts))
    text = report(rows, memory, bursts, levels[-1])
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "concurrency.md").write_text(text + "\n")
    document = {"cases": rows, f"boto3 at {levels[-1]} slots": memory, "bursts": bursts}
    (args.out / "concurrency.json").write_text(json.dumps(document, indent=2) + "\n")


def report(
    rows: list[dict[str, object]], memory: dict[str, dict[str, float]], bursts: dict[str, list[float]], slots: int
) -> str:
    """The Markdown tables: each case, ratios to awslambdaric; memory with boto3; the bursts."""
    names = list(CONTESTANTS)
    lines = [
        "| handler | concurrency | " + " | ".join(f"{n} invokes/s" for n in names) + " | throughput / awslambdaric "
        '| "no free slot" answers | PSS MB (processes) | PSS / awslambdaric |',
        "| --- | ---: |" + " ---: |" * (len(names) + 4),
    ]
    for row in rows:
        results: dict[str, dict[str, float]] = {name: row[name] for name in names}  # type: ignore[misc]
        theirs = results["awslambdaric"]
        rates = " | ".join(f"{results[n]['invokes/s']:.1f}" for n in names)
        ratios = ", ".join(f"{results[n]['invokes/s'] / theirs['invokes/s']:.2f}x" for n in names[1:])
        busy = ", ".join(f"{int(results[n]['no free slot'])}" for n in names)
        pss = ", ".join(f"{results[n]['PSS MB']:.1f} ({int(results[n]['processes'])})" for n in names)
        pss_ratios = ", ".join(f"{results[n]['PSS MB'] / theirs['PSS MB']:.2f}x" for n in names[1:])
        lines.append(
            f"| {row['handler']} | {row['concurrency']} | {rates} | {ratios} | {busy} | {pss} | {pss_ratios} |"
        )
    lines += [
        "",
        "Contestants in every cell in this order: " + ", ".join(names) + "; ratios for the two pylambda models.",
        "",
    ]
    lines += [
        f"| a boto3 client created at import, {slots} slots | PSS MB | processes | PSS / awslambdaric |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in names:
        ratio = memory[name]["PSS MB"] / memory["awslambdaric"]["PSS MB"]
        lines.append(f"| {name} | {memory[name]['PSS MB']:.1f} | {int(memory[name]['processes'])} | {ratio:.2f}x |")
    lines += ["", "8 invokes of a handler that sleeps 0.5 s, sent at once to 8 slots: all answered after "]
    lines[-1] += "; ".join(f"{name} {', '.join(f'{s:.2f}' for s in seconds)} s" for name, seconds in bursts.items())
    return "\n".join(lines)


if __name__ == "__main__":
    main()
