"""pylambda against the official client, awslambdaric, side by side under the same real emulator, per interpreter.

    ./dev python benchmarks/compare.py [--interpreters standin,3.13,3.14,3.15] [--cold 10] [--invokes 2000]

Interpreters (each is measured on its own, everything alternating within it):
- ``standin``: the layer as it ships, with the offline stand-in of this
  machine's CPython 3.11 bundled (trimmed, byte-compiled);
- ``3.13``, ``3.14``, ``3.15``: Debian sid's own CPython (``testkit.sid_root``:
  a root made once with debootstrap and cached; run with chroot, so as root),
  with a layer built without an interpreter and byte-compiled by that one.

On each, three contestants run the same handler on the same interpreter,
byte-compiled alike: pylambda (the layer's bootstrap), awslambdaric (``python
-m awslambdaric``, its wheel for that version on PYTHONPATH and nothing else)
and the *http.client floor* (``http_floor.py``: a bare Runtime API loop on
the standard library's http.client, which stock urllib3 is built on,
importing logging and json as both runtimes do; the layer's urllib3 is built
on the runtime's own ``http11`` instead, so pylambda can start below it).
Ratios are pylambda / awslambdaric: below 1.0, pylambda is cheaper.

- cold start CPU: CPU time of the runtime process (all threads) from exec to
  its first response, so init and the first invoke both count;
- cold start to first response: wall time from starting the emulator to the
  first answer, as a caller of a cold function sees it;
- modules after the first invoke: ``len(sys.modules)`` in the handler;
- warm: CPU per invoke and client latency over --invokes invokes; peak RSS;
- 1 MB and 6 MB responses: round trip and runtime CPU;
- with boto3: cold start CPU and peak RSS when the handler creates a boto3
  client at import (boto3 in the task root, as a function ships it);
- where the cold start goes: the median ``-X importtime`` self time of each
  module pylambda imports at start-up that awslambdaric does not, grouped.

Writes the tables (Markdown and JSON) and a PNG chart of the ratios to --out.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pylambda_build import layers, standin
from pylambda_build.emulator import INVOKE_PATH, Emulator
from testkit import baseline, sid_root

HANDLER = """
import sys


def handler(event, context):
    if event.get("modules"):
        return len(sys.modules)
    size = event.get("size")
    return "x" * size if size else {"ok": True}
"""
BOTO3_HANDLER = """
import boto3

s3 = boto3.client("s3", region_name="us-east-1")


def handler(event, context):
    return {"ok": True}
"""
PAYLOADS = {"1 MB response": 1_000_000, "6 MB response": 6_000_000}
FLOOR = Path(__file__).resolve().parent / "http_floor.py"
WARM_TURNS = 4  # the warm invokes are measured in this many turns per contestant, alternating
RUNTIMES = ("pylambda", "awslambdaric")
FLOOR_NAME = "http.client floor"
COLD_CPU = "cold start CPU (ms)"

Start = Callable[[], Emulator]


class Interpreter:
    """One interpreter with pylambda, awslambdaric, the floor and both task roots laid out and compiled for it."""

    def __init__(self, name: str, work: Path, boto3_site: Path) -> None:
        self.name = name
        self.work = work
        self.layer = work / "layer"
        self.task = work / "task"
        self.task.mkdir()
        (self.task / "app.py").write_text(HANDLER)
        self.boto3_task = work / "boto3-task"
        shutil.copytree(boto3_site, self.boto3_task)
        (self.boto3_task / "app.py").write_text(BOTO3_HANDLER)
        self.floor = work / FLOOR.name
        shutil.copy(FLOOR, self.floor)
        self.env = {**{name: None for name in os.environ if name.startswith("PYTHON")}, "PATH": "/usr/bin:/bin"}
        self.root: Path | None = None
        if name == "standin":
            tarball = standin.make_tarball(work)
            # The stand-in was built on this machine, with a newer glibc than Lambda's.
            layers.build_layer(self.layer, layers.LayerSpec(str(tarball), allow_newer_glibc=True))
            [python] = self.layer.glob("pylambda/python3.*/bin/python3")
            self.python = str(python)
            self.ric = baseline.packages(work / "ric")
        else:
            self.root = sid_root.ensure()
            layers.build_layer(self.layer, layers.LayerSpec("none"))
            bindir = work / "bin"  # the bootstrap runs the python3 on PATH; it resolves inside the root
            bindir.mkdir()
            (bindir / "python3").symlink_to(sid_root.python(name))
            self.python = str(bindir / "python3")
            self.env["PATH"] = f"{bindir}:/usr/bin:/bin"
            self.ric = baseline.packages_for(name, work / "ric")
        # As a function ships: compiled by the interpreter that runs it, never at a cold start.
        self.run([self.python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(work)])

    def run(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run a command on this interpreter's file system (inside the sid root for Debian's Pythons)."""
        prefix = [] if self.root is None else sid_root.enter(self.root, [self.work])
        return subprocess.run([*prefix, *command], check=True, capture_output=True, text=True)

    def starts(self, task: Path, *, floor: bool) -> dict[str, Start]:
        """How to start each contestant under a fresh emulator, serving the handler in ``task``."""

        def emulator(program: Path | str, env: dict[str, str | None], args: Sequence[str] = ()) -> Start:
            binds = [self.work]
            return lambda: Emulator(
                Path(program), task, env=env, args=args, enter=sid_root.entering(self.root), binds=binds
            )

        starts = {
            "pylambda": emulator(self.layer / "bootstrap", self.env),
            "awslambdaric": emulator(
                self.python, {**self.env, "PYTHONPATH": str(self.ric)}, ["-m", "awslambdaric", "app.handler"]
            ),
        }
        if floor:
            starts[FLOOR_NAME] = emulator(self.python, self.env, [str(self.floor)])
        return starts


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


def cold_start(start: Start, first_event: bytes = b"{}") -> dict[str, float]:
    """Runtime CPU and wall time from starting the emulator to the first response, and peak RSS then."""
    began = time.perf_counter()
    with start() as emulator:
        answer = Client(emulator.port).invoke(first_event)
        wall = time.perf_counter() - began
        pid = emulator.runtime_pid()
        assert pid is not None, emulator.logs()
        result = {
            COLD_CPU: runtime_cpu_ns(pid) / 1e6,
            "cold start to first response (ms)": wall * 1e3,
            "peak RSS after a cold start (MB)": peak_rss_kb(pid) / 1024,
        }
        if isinstance(modules := json.loads(answer), int):  # the floor has no handler to ask
            result["modules after the first invoke"] = float(modules)
        return result


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
            "peak RSS after the warm invokes (MB)": peak_rss_kb(pid) / 1024,
        }
        for name, size in PAYLOADS.items() if payloads else ():
            body = json.dumps({"size": size}).encode()
            rounds = 20 // WARM_TURNS  # 20 of each in all
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


def alternate(
    starts: dict[str, Start], rounds: int, measure: Callable[[Start], dict[str, float]]
) -> dict[str, dict[str, list[float]]]:
    """``measure`` each contestant ``rounds`` times, rotating who goes first; every metric's list of values."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in starts}
    names = list(starts)
    for number in range(rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            for metric, value in measure(starts[name]).items():
                samples[name].setdefault(metric, []).append(value)
    return samples


def measure(interpreter: Interpreter, cold: int, invokes: int) -> dict[str, dict[str, float]]:
    """metric -> contestant -> median, for one interpreter."""
    plain = interpreter.starts(interpreter.task, floor=True)
    boto3 = interpreter.starts(interpreter.boto3_task, floor=False)
    for start in [*plain.values(), *boto3.values()]:  # one unmeasured start each, to fill the page cache
        cold_start(start)
    samples = alternate(plain, cold, lambda start: cold_start(start, b'{"modules": true}'))
    for name, values in alternate(boto3, max(cold // 2, 1), cold_start).items():
        samples[name]["with boto3: cold start CPU (ms)"] = values[COLD_CPU]
        samples[name]["with boto3: peak RSS after a cold start (MB)"] = values["peak RSS after a cold start (MB)"]
    # The warm invokes too in turns, each a share of them: a busy minute of a neighbour weighs on every contestant.
    for number in range(WARM_TURNS):
        names = list(plain)
        for name in names[number % len(names) :] + names[: number % len(names)]:
            share = max(invokes // WARM_TURNS, 1)
            for metric, value in warm(plain[name], share, payloads=name != FLOOR_NAME).items():
                samples[name].setdefault(metric, []).append(value)
    metrics = list(samples["pylambda"])
    return {
        metric: {name: statistics.median(values[metric]) for name, values in samples.items() if metric in values}
        for metric in metrics
    }


IMPORT_TIME = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)")
GROUPS = (
    ("urllib3 (vendored)", ("pylambda._vendor",)),
    ("pylambda's own modules", ("pylambda",)),
    (
        "socket and what it imports: selectors, select, array, math",
        ("socket", "_socket", "selectors", "select", "array", "math", "errno", "binascii"),
    ),
    (
        "http.client, email, ssl (none, unless something else imports them)",
        ("http", "email", "ssl", "_ssl", "urllib", "base64", "datetime", "_datetime", "calendar", "random"),
    ),
    ("typing (urllib3 evaluates it at import)", ("typing", "_typing")),
)


def where_cold_start_goes(interpreter: Interpreter, runs: int) -> dict[str, float]:
    """Median self import time (ms) of the modules pylambda's start-up imports and awslambdaric's does not, grouped."""

    def self_times(program: str) -> dict[str, list[int]]:
        times: dict[str, list[int]] = {}
        for _ in range(runs):
            stderr = interpreter.run([interpreter.python, "-X", "importtime", "-c", program]).stderr
            for match in IMPORT_TIME.finditer(stderr):
                times.setdefault(match.group(3), []).append(int(match.group(1)))
        return times

    ours = self_times(
        f"import sys; sys.path.insert(0, {str(interpreter.layer / 'pylambda' / 'runtime')!r}); import pylambda.runtime"
    )
    theirs = self_times(f"import sys; sys.path.insert(0, {str(interpreter.ric)!r}); import awslambdaric.bootstrap")
    groups: dict[str, float] = {}
    for module, micros in ours.items():
        if module in theirs:
            continue
        group = next(
            (label for label, prefixes in GROUPS if module.split(".")[0] in prefixes or module.startswith(prefixes)),
            "other standard library",
        )
        groups[group] = groups.get(group, 0.0) + statistics.median(micros) / 1000
    return dict(sorted(groups.items(), key=lambda item: -item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreters", default="standin,3.13,3.14,3.15", help="comma-separated (default: all)")
    parser.add_argument("--cold", type=int, default=10, help="cold starts per contestant (default: 10)")
    parser.add_argument("--invokes", type=int, default=2000, help="warm invokes per contestant (default: 2000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG (no matplotlib needed)")
    args = parser.parse_args()

    results: dict[str, dict[str, dict[str, float]]] = {}
    costs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        boto3_site = work / "boto3-site"
        pin = f"boto3=={importlib.metadata.version('boto3')}"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*command, "--target", str(boto3_site), pin], check=True)
        for name in args.interpreters.split(","):
            folder = work / name
            folder.mkdir()
            interpreter = Interpreter(name, folder, boto3_site)
            print(f"compare: {name}", file=sys.stderr)
            results[name] = measure(interpreter, args.cold, args.invokes)
            costs[name] = where_cold_start_goes(interpreter, max(args.cold, 3))
    report(results, costs, args)


def report(
    results: dict[str, dict[str, dict[str, float]]], costs: dict[str, dict[str, float]], args: argparse.Namespace
) -> None:
    """Markdown (printed and written), JSON and a chart."""
    lines = [
        f"Medians of {args.cold} cold starts, and of {WARM_TURNS} turns of {args.invokes} warm invokes in all,"
        " per contestant.",
        "",
    ]
    names = list(results)
    metrics = list(results[names[0]])
    lines += ["| pylambda / awslambdaric | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for metric in metrics:
        cells = [f"{results[n][metric]['pylambda'] / results[n][metric]['awslambdaric']:.2f}x" for n in names]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    for name in names:
        lines += [
            "",
            f"### {name}",
            "",
            f"| metric | pylambda | awslambdaric | **ratio** | {FLOOR_NAME} | floor ratio |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for metric, values in results[name].items():
            ours, theirs = values["pylambda"], values["awslambdaric"]
            floor = values.get(FLOOR_NAME)
            floor_cells = f"{floor:.2f} | {floor / theirs:.2f}x" if floor is not None else "n/a | n/a"
            lines.append(f"| {metric} | {ours:.2f} | {theirs:.2f} | **{ours / theirs:.2f}x** | {floor_cells} |")
        lines += [
            "",
            "| imported at start-up by pylambda, not by awslambdaric | ms (median self import time) |",
            "| --- | ---: |",
        ]
        lines += [f"| {group} | {ms:.1f} |" for group, ms in costs[name].items()]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text + "\n")
    document = {"interpreters": results, "where the cold start goes (ms)": costs}
    (args.out / "latest.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if not args.no_chart:
        chart(results, args.out / "latest.png")


def chart(results: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    metrics = list(results[names[0]])[::-1]
    figure, axes = plt.subplots(figsize=(11, 7))
    height = 0.8 / len(names)
    for index, name in enumerate(names):
        ratios = [results[name][m]["pylambda"] / results[name][m]["awslambdaric"] for m in metrics]
        offsets = [row + (index - (len(names) - 1) / 2) * height for row in range(len(metrics))]
        axes.barh(offsets, ratios, height=height, label=name)
    axes.set_yticks(list(range(len(metrics))), metrics)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xlabel("pylambda / awslambdaric (left of the line: pylambda is cheaper or faster)")
    axes.set_title("pylambda vs awslambdaric under the same emulator, per interpreter (medians)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
