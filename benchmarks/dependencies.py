"""Functions with dependencies, packaged the managed way and the pylambda way, under the same emulator, per Python.

    ./dev python benchmarks/dependencies.py [--interpreters standin,3.13,3.14,3.15] [--cold 10] [--invokes 500]
                                            [--functions boto3,powertools,fastapi]

Real functions are mostly their dependencies. Three of them, each on each interpreter:

- ``boto3``: a boto3 S3 client created at import;
- ``powertools``: pydantic models and a Powertools logger that injects the Lambda context;
- ``fastapi``: the FastAPI example (functions/webapi) behind Mangum.

Two ways to ship each, on the same interpreter (see compare.py for the interpreters):

- **the managed way**: awslambdaric, with the function's folder as ``sam build``
  lays it out for a managed Python runtime: the requirements pip-installed into
  it and byte-compiled by that Python (pip's timestamp pycs), then zipped with
  the fixed 1980 timestamps SAM writes and unpacked read-only. Every pyc no
  longer matches its source's time, so each cold start compiles every module
  it imports, and cannot save the result;
- **the pylambda way**: the runtime layer plus a dependency layer from ``pylambda
  deps`` (hash-checked pycs for the layer's Python), the function's zip holding
  only its handler.

Figures: cold start CPU (the runtime process, exec to first answer), init to
first answer (wall), peak RSS, and CPU per warm invoke with the dependencies
loaded. Ratios are pylambda / managed; below 1.0 pylambda is cheaper.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import Client, Interpreter, alternate, cold_start, peak_rss_kb, runtime_cpu_ns
from shipping import as_sam_zip_unpacked, write_results
from web_apps import request_event

from pylambda_build import deps, layers, readable_by_all
from pylambda_build.emulator import Emulator
from testkit import sid_root

ROOT = Path(__file__).resolve().parent.parent
WEBAPI = ROOT / "functions" / "webapi"
MANAGED, PYLAMBDA = "managed way (awslambdaric, sam build's zip)", "pylambda way (runtime + dependency layer)"
COLD_CPU = "cold start CPU (ms)"
GLIBC = layers.PROVIDED_AL2023_GLIBC

Start = Callable[[], Emulator]

BOTO3 = """
import boto3

s3 = boto3.client("s3", region_name="us-east-1")


def handler(event, context):
    return {"buckets": s3.meta.region_name}
"""
POWERTOOLS = """
from aws_lambda_powertools import Logger
from pydantic import BaseModel

logger = Logger(service="orders")


class Item(BaseModel):
    sku: str
    quantity: int


class Order(BaseModel):
    order_id: str
    items: list[Item]


@logger.inject_lambda_context
def handler(event, context):
    order = Order.model_validate(event)
    logger.debug("validated", extra={"items": len(order.items)})
    return {"order_id": order.order_id, "quantity": sum(item.quantity for item in order.items)}
"""
MANGUM = "from mangum import Mangum\n\nfrom app import app\n\nhandler = Mangum(app, lifespan='auto')\n"


class Function:
    """One benchmarked function: its requirements, its files, its handler and the event it is sent."""

    def __init__(self, name: str, requirements: list[str], files: dict[str, str], handler: str, event: object):
        self.name, self.requirements, self.files, self.handler = name, requirements, files, handler
        self.event = json.dumps(event).encode()


def functions() -> dict[str, Function]:
    boto3 = f"boto3=={importlib.metadata.version('boto3')}"
    return {
        "boto3": Function("boto3", [boto3], {"app.py": BOTO3}, "app.handler", {}),
        "powertools": Function(
            "powertools",
            ["aws-lambda-powertools==3.37.0", "pydantic==2.14.4"],
            {"app.py": POWERTOOLS},
            "app.handler",
            {"order_id": "A-1", "items": [{"sku": "x", "quantity": 2}, {"sku": "y", "quantity": 1}]},
        ),
        "fastapi": Function(
            "fastapi",
            [*(WEBAPI / "requirements.txt").read_text().split("\n"), "mangum==0.22.0"],
            {"app.py": (WEBAPI / "app.py").read_text(), "managed.py": MANGUM},
            "managed.handler",
            json.loads(request_event()),  # a function URL's GET, the same as web_apps.py sends
        ),
    }


class Setup:
    """One interpreter's layer and awslambdaric (compare.Interpreter), and a python3 that runs here to build with."""

    def __init__(self, name: str, work: Path) -> None:
        self.interpreter = Interpreter(name, work, empty_site(work))
        self.work = work
        if self.interpreter.root is None:
            self.builder = Path(self.interpreter.python)
        else:  # Debian's python3.X inside the sid root, this folder bound at the same path
            self.builder = work / "host-bin" / "python3"
            self.builder.parent.mkdir()
            enter = shlex.join([*sid_root.enter(self.interpreter.root, [work]), sid_root.python(name)])
            self.builder.write_text(f'#!/bin/sh\ncd {shlex.quote(str(work))} && exec {enter} "$@"\n')
            self.builder.chmod(0o755)
        self.target = deps.probe(self.builder, "x86_64")

    def lay_out(self, function: Function) -> dict[str, Start]:
        """Both ways of shipping ``function``, and how to start each under a fresh emulator."""
        folder = self.work / function.name
        folder.mkdir()
        requirements = folder / "requirements.txt"
        requirements.write_text("\n".join(line for line in function.requirements if line.strip()) + "\n")
        handler_only = folder / "task"
        handler_only.mkdir()
        for name, source in function.files.items():
            (handler_only / name).write_text(source)
        deps.build(requirements, folder / "deps", self.target, glibc=GLIBC, allow_newer_glibc=True)
        opt = layers.merge_layers([self.interpreter.layer, folder / "deps"], folder / "opt")
        zipped = self.sam_zip(requirements, handler_only, folder)
        # Each way on its own folders: the pylambda way's function holds its handler only.
        if sorted(path.name for path in handler_only.iterdir()) != sorted(function.files) or zipped == handler_only:
            raise RuntimeError(f"{function.name}: the two ways' folders are mixed up")
        readable_by_all(folder)
        interpreter = self.interpreter
        enter, binds = sid_root.entering(interpreter.root), [self.work]
        env = dict(interpreter.env)
        managed_env = {**env, "PYTHONPATH": str(interpreter.ric), "PYTHONDONTWRITEBYTECODE": "1"}  # read-only task
        return {
            MANAGED: lambda: Emulator(
                Path(interpreter.python),
                zipped,
                env=managed_env,
                args=["-m", "awslambdaric", function.handler],
                enter=enter,
                binds=binds,
            ),
            PYLAMBDA: lambda: Emulator(
                opt / "bootstrap", handler_only, function.handler, env=env, enter=enter, binds=binds
            ),
        }

    def sam_zip(self, requirements: Path, handler_only: Path, folder: Path) -> Path:
        """The function's folder as sam build makes it for a managed runtime, unpacked as Lambda unpacks it."""
        artifact = folder / "artifact"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
        command += ["--only-binary", ":all:", "--implementation", "cp", "--python-version", self.target.version]
        command += ["--abi", self.target.abi, *(f"--platform={p}" for p in self.target.platforms(GLIBC))]
        subprocess.run([*command, "--target", str(artifact), "-r", str(requirements)], check=True, capture_output=True)
        shutil.copytree(handler_only, artifact, dirs_exist_ok=True)
        # pip's own pycs, as the build's Python writes them: stamped with each source's modification time.
        subprocess.run([str(self.builder), "-m", "compileall", "-q", str(artifact)], check=False, capture_output=True)
        return as_sam_zip_unpacked(artifact, folder)


def empty_site(work: Path) -> Path:
    """compare.Interpreter lays out a boto3 task of its own, unused here: give it an empty one."""
    site = work / "unused-boto3-site"
    site.mkdir()
    return site


def warm(start: Start, event: bytes, invokes: int) -> dict[str, float]:
    with start() as emulator:
        client = Client(emulator.port)
        for _ in range(20):
            client.invoke(event)
        pid = emulator.runtime_pid()
        assert pid is not None
        before = runtime_cpu_ns(pid)
        for _ in range(invokes):
            client.invoke(event)
        return {
            "CPU per warm invoke (µs)": (runtime_cpu_ns(pid) - before) / invokes / 1e3,
            "peak RSS after the warm invokes (MB)": peak_rss_kb(pid) / 1024,
        }


def measure(starts: dict[str, Start], event: bytes, cold: int, invokes: int) -> dict[str, dict[str, float]]:
    """metric -> way -> median."""
    for start in starts.values():  # one unmeasured start each: the page cache
        cold_start(start, event)
    samples = alternate(starts, cold, lambda start: cold_start(start, event))
    for name, values in alternate(starts, 2, lambda start: warm(start, event, max(invokes // 2, 1))).items():
        samples[name].update(values)
    metrics = [m for m in samples[PYLAMBDA] if m != "modules after the first invoke"]
    return {metric: {way: statistics.median(samples[way][metric]) for way in starts} for metric in metrics}


def report(results: dict[str, dict[str, dict[str, dict[str, float]]]], args: argparse.Namespace) -> str:
    """Markdown: ratios per function and interpreter, then the absolute figures."""
    interpreters = list(results)
    names = list(results[interpreters[0]])
    metrics = list(results[interpreters[0]][names[0]])
    lines = [
        f"Medians of {args.cold} cold starts and 2 turns of {args.invokes} warm invokes per way; pylambda / managed.",
        "",
        "| function | metric | " + " | ".join(interpreters) + " |",
        "| --- | --- |" + " ---: |" * len(interpreters),
    ]
    for name in names:
        for metric in metrics:
            cells = [
                f"{results[i][name][metric][PYLAMBDA] / results[i][name][metric][MANAGED]:.2f}x" for i in interpreters
            ]
            lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    for interpreter in interpreters:
        lines += [
            "",
            f"### {interpreter}",
            "",
            f"| function | metric | {MANAGED} | {PYLAMBDA} |",
            "| --- | --- | ---: | ---: |",
        ]
        for name in names:
            for metric, values in results[interpreter][name].items():
                lines.append(f"| {name} | {metric} | {values[MANAGED]:.1f} | {values[PYLAMBDA]:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreters", default="standin,3.13,3.14,3.15", help="comma-separated (default: all)")
    parser.add_argument("--functions", default="boto3,powertools,fastapi", help="comma-separated (default: all)")
    parser.add_argument("--cold", type=int, default=10, help="cold starts per way (default: 10)")
    parser.add_argument("--invokes", type=int, default=500, help="warm invokes per way (default: 500)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    every = functions()
    chosen = [every[name] for name in args.functions.split(",")]
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.interpreters.split(","):
            work = Path(scratch) / name
            work.mkdir()
            setup = Setup(name, work)
            results[name] = {}
            for function in chosen:
                print(f"dependencies: {name}: {function.name}", file=sys.stderr)
                results[name][function.name] = measure(setup.lay_out(function), function.event, args.cold, args.invokes)
    write_results(args.out, "dependencies", report(results, args), results)


if __name__ == "__main__":
    main()
