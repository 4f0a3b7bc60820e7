"""pylambda against the official client, awslambdaric, side by side under the same real emulator.

    ./dev python benchmarks/compare.py [--cold 10] [--invokes 2000] [--out benchmarks/results]

Both runtimes run the same no-op handler on the same interpreter: the one
pylambda's layer bundles (by default the offline stand-in made from this
machine's Python; --python takes anything build.py --python does), trimmed
and byte-compiled as it ships. pylambda runs as that layer's bootstrap,
awslambdaric as ``<that python> -m awslambdaric app.handler`` with only its
own (pip-compiled) packages on PYTHONPATH. Neither inherits PYTHON* variables
from the caller. Measurements alternate between the two so that drift on a noisy
machine hits both alike, and every figure is reported as a median with the
ratio pylambda / awslambdaric (below 1.0 means pylambda is cheaper):

- cold start: CPU time of the runtime process (all threads, from
  /proc/PID/task/*/schedstat) until the first response, and wall time from
  starting the emulator to that response;
- warm: runtime CPU per invoke over --invokes invokes, client latency p50/p99;
- peak RSS (VmHWM) of the runtime process after the warm invokes;
- 1 MB and 6 MB responses: client round trip and runtime CPU per invoke.

Writes the table (Markdown and JSON) and a PNG chart of the ratios to --out.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import build
from buildlib import baseline, standin
from buildlib.emulator import INVOKE_PATH, Emulator

HANDLER = """
def handler(event, context):
    size = event.get("size") if isinstance(event, dict) else None
    return "x" * size if size else {"ok": True}
"""
PAYLOADS = {"1 MB response": 1_000_000, "6 MB response": 6_000_000}
FLOOR = Path(__file__).resolve().parent / "urllib3_floor.py"

Start = Callable[[], Emulator]


def runtime_cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in nanoseconds."""
    total = 0
    for schedstat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(schedstat.read_text().split()[0])
        except (OSError, ValueError):
            continue  # a thread that ended while we looked
    return total


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


class Client:
    """A kept-alive connection to the emulator's invoke endpoint."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def invoke(self, body: bytes) -> bytes:
        self.connection.request("POST", INVOKE_PATH, body=body)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200 or b'"errorType"' in data[:200]:
            raise RuntimeError(f"invoke failed: {response.status} {data[:300]!r}")
        return data


def cold_start(start: Start) -> tuple[float, float]:
    """(runtime CPU ms, wall ms) from starting the emulator to the first response."""
    began = time.perf_counter()
    with start() as emulator:
        Client(emulator.port).invoke(b"{}")
        wall = time.perf_counter() - began
        pid = emulator.runtime_pid()
        assert pid is not None, emulator.logs()
        return runtime_cpu_ns(pid) / 1e6, wall * 1e3


def warm(start: Start, invokes: int, *, payloads: bool) -> dict[str, float]:
    """Per-invoke CPU and latency over many no-op invokes, peak RSS, and the big responses."""
    with start() as emulator:
        client = Client(emulator.port)
        for _ in range(50):  # warm-up: connections, first-call caches
            client.invoke(b"{}")
        pid = emulator.runtime_pid()
        assert pid is not None
        latencies = []
        cpu_before = runtime_cpu_ns(pid)
        for _ in range(invokes):
            began = time.perf_counter()
            client.invoke(b"{}")
            latencies.append(time.perf_counter() - began)
        cpu = (runtime_cpu_ns(pid) - cpu_before) / invokes
        latencies.sort()
        result = {
            "CPU per invoke (µs)": cpu / 1e3,
            "latency p50 (µs)": latencies[len(latencies) // 2] * 1e6,
            "latency p99 (µs)": latencies[int(len(latencies) * 0.99)] * 1e6,
            "peak RSS (MB)": peak_rss_kb(pid) / 1024,
        }
        for name, size in PAYLOADS.items() if payloads else ():
            body = json.dumps({"size": size}).encode()
            rounds = 20
            times = []
            cpu_before = runtime_cpu_ns(pid)
            for _ in range(rounds):
                began = time.perf_counter()
                data = client.invoke(body)
                times.append(time.perf_counter() - began)
                assert len(data) == size + 2, len(data)
            result[f"{name} round trip (ms)"] = statistics.median(times) * 1e3
            result[f"{name} CPU (ms)"] = (runtime_cpu_ns(pid) - cpu_before) / rounds / 1e6
        return result


def import_costs(python: Path, runtime: Path, ric_path: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """Median CPU of interpreters that only import things: where the cold-start floor comes from."""
    programs = {
        "start the interpreter, import nothing": "pass",
        "import http.client (urllib3 is built on it)": "import http.client",
        "import urllib3 (the layer's vendored copy)": f"import sys; sys.path.insert(0, {str(runtime)!r}); "
        "import pylambda._vendor.urllib3",
        "import all of pylambda's runtime": f"import sys; sys.path.insert(0, {str(runtime)!r}); "
        "import pylambda.runtime",
        "import awslambdaric's bootstrap": f"import sys; sys.path.insert(0, {str(ric_path)!r}); "
        "import awslambdaric.bootstrap",
    }
    costs = {}
    for label, program in programs.items():
        samples = []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([str(python), "-c", program], env=env, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3)
        costs[label] = statistics.median(samples)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=10, help="cold starts per runtime (default: 10)")
    parser.add_argument("--invokes", type=int, default=2000, help="warm invokes per runtime (default: 2000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument("--python", help="interpreter source for the layer (default: the offline stand-in)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        layer = work / "layer"
        build.build_layer(
            layer,
            build.LayerSpec(
                # The offline stand-in was built on this machine, with a newer glibc than Lambda's.
                args.python or str(standin.make_tarball(work)),
                allow_newer_glibc=args.python is None,
            ),
        )
        [python] = layer.glob("pylambda/python3.*/bin/python3")
        task_root = work / "task"
        task_root.mkdir()
        (task_root / "app.py").write_text(HANDLER)
        clean = {name: None for name in os.environ if name.startswith("PYTHON")}
        env = {**clean, "PATH": "/usr/bin:/bin"}
        ric_path = baseline.packages(work / "ric")
        ric_env = {**env, "PYTHONPATH": str(ric_path)}
        starts: dict[str, Start] = {
            "pylambda": lambda: Emulator(layer / "bootstrap", task_root, env=env),
            "awslambdaric": lambda: Emulator(
                python, task_root, env=ric_env, args=["-m", "awslambdaric", "app.handler"]
            ),
            "urllib3 floor": lambda: Emulator(
                python, task_root, env=env, args=[str(FLOOR), str(layer / "pylambda" / "runtime")]
            ),
        }
        for start in starts.values():  # one unmeasured start each, to fill the page cache
            cold_start(start)
        results: dict[str, dict[str, list[float]]] = {name: {} for name in starts}
        for round_number in range(args.cold):
            order = list(starts)[round_number % len(starts) :] + list(starts)[: round_number % len(starts)]
            for name in order:
                cpu, wall = cold_start(starts[name])
                results[name].setdefault("cold start CPU (ms)", []).append(cpu)
                results[name].setdefault("cold start wall (ms)", []).append(wall)
        for name, start in starts.items():
            for metric, value in warm(start, args.invokes, payloads=name != "urllib3 floor").items():
                results[name].setdefault(metric, []).append(value)
        plain_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        imports = import_costs(python, layer / "pylambda" / "runtime", ric_path, plain_env, max(args.cold * 2, 3))

    table = {
        metric: {name: statistics.median(values[metric]) for name, values in results.items() if metric in values}
        for metric in results["pylambda"]
    }
    report(table, imports, args)


def report(table: dict[str, dict[str, float]], imports: dict[str, float], args: argparse.Namespace) -> None:
    lines = [
        f"| metric (median; {args.cold} cold starts, {args.invokes} warm invokes) | pylambda | awslambdaric "
        "| **pylambda / awslambdaric** | urllib3 floor | floor / awslambdaric |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for metric, values in table.items():
        ours, theirs = values["pylambda"], values["awslambdaric"]
        floor = values.get("urllib3 floor")
        floor_cells = f"{floor:.2f} | {floor / theirs:.2f}x" if floor is not None else "n/a | n/a"
        lines.append(f"| {metric} | {ours:.2f} | {theirs:.2f} | **{ours / theirs:.2f}x** | {floor_cells} |")
    lines += ["", "| what a bare interpreter does (median CPU) | ms |", "| --- | ---: |"]
    lines += [f"| {label} | {ms:.1f} |" for label, ms in imports.items()]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text + "\n")
    document = {"runtimes": table, "imports": imports}
    (args.out / "latest.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if not args.no_chart:
        chart(table, args.out / "latest.png")


def chart(table: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(table)[::-1]
    ratios = [table[m]["pylambda"] / table[m]["awslambdaric"] for m in metrics]
    floors = [
        table[m]["urllib3 floor"] / table[m]["awslambdaric"] if "urllib3 floor" in table[m] else 0 for m in metrics
    ]
    figure, axes = plt.subplots(figsize=(10, 6))
    rows = range(len(metrics))
    colours = ["#2a9d8f" if r <= 1.0 else "#e76f51" for r in ratios]
    bars = axes.barh([r + 0.2 for r in rows], ratios, height=0.4, color=colours, label="pylambda")
    axes.barh([r - 0.2 for r in rows], floors, height=0.4, color="#bbbbbb", label="urllib3 floor (bare loop)")
    axes.set_yticks(list(rows), metrics)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.bar_label(bars, labels=[f"{r:.2f}x" for r in ratios], padding=3)
    axes.set_xlabel("ratio to awslambdaric (left of the line: cheaper or faster than the official client)")
    axes.set_title("pylambda vs awslambdaric under the same emulator (medians)")
    axes.set_xlim(0, max(2.0, max(ratios + floors) * 1.15))
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
