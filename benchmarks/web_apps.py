"""A FastAPI app served natively by pylambda, against the same app behind Mangum, under the same real emulator.

    ./dev python benchmarks/web_apps.py [--cold 10] [--requests 1000]

The app is functions/webapi, on the layer with the stand-in of this machine's
CPython 3.11 bundled. Four contestants, alternating:

- ``pylambda native``: ``_HANDLER=app.app``, FastAPI in a dependency layer
  from ``pylambda deps`` (byte-compiled for the layer's Python, hash-checked pycs);
- ``Mangum on pylambda``: the same layers, ``_HANDLER`` a module that wraps the app in ``Mangum(app)``;
- ``Mangum on awslambdaric``: the same packages, on PYTHONPATH, run by
  ``python -m awslambdaric``: only the runtime and the adapter differ;
- ``Mangum on awslambdaric, zipped as sam build does``: the packages pip-installed
  into the function's folder, which is zipped with the fixed 1980 timestamps
  SAM writes, unpacked read-only: the pycs pip wrote no longer match their
  sources, so Python compiles every module it imports at each cold start and
  cannot keep the result. How such a function ships to the managed runtime today.

Figures: cold start CPU (runtime process, exec to first answer), cold start
wall time, peak RSS, and CPU per request over warm requests (a function URL
GET that FastAPI answers with JSON). Ratios are pylambda native / each other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import Client, alternate, cold_start, peak_rss_kb, runtime_cpu_ns
from shipping import as_sam_zip_unpacked, write_results

from pylambda_build import layers, readable_by_all, standin
from pylambda_build.emulator import Emulator
from testkit import baseline

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "functions" / "webapi"
ADAPTER = "from mangum import Mangum\n\nfrom app import app\n\nhandler = Mangum(app, lifespan='auto')\n"
MANGUM = "mangum==0.22.0"
NATIVE = "pylambda native"
SAM_WAY = "Mangum on awslambdaric, zipped as sam build does"
CONTESTANTS = (NATIVE, "Mangum on pylambda", "Mangum on awslambdaric", SAM_WAY)
COLD_CPU = "cold start CPU (ms)"

Start = Callable[[], Emulator]


def request_event() -> bytes:
    """A function URL's GET /hello/ada, as Lambda sends it (payload format 2.0)."""
    return json.dumps(
        {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/hello/ada",
            "rawQueryString": "",
            "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "x-forwarded-proto": "https", "accept": "*/*"},
            "requestContext": {
                "domainName": "abc.lambda-url.us-east-1.on.aws",
                "http": {"method": "GET", "path": "/hello/ada", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
                "requestId": "r1",
                "routeKey": "$default",
                "stage": "$default",
            },
            "isBase64Encoded": False,
        }
    ).encode()


def as_sam_zips(site: Path, app: Path, into: Path) -> Path:
    """The function's folder as `sam build` makes it for a managed runtime, unpacked as Lambda unpacks it."""
    folder = into / "folder"
    shutil.copytree(site, folder)
    for path in app.iterdir():
        if path.is_file():
            shutil.copy(path, folder / path.name)
    (folder / "managed.py").write_text(ADAPTER)
    return as_sam_zip_unpacked(folder, into)


def lay_out(work: Path) -> dict[str, Start]:
    """Build everything each contestant runs on, and how to start each under a fresh emulator."""
    tarball = standin.make_tarball(work)
    spec = layers.LayerSpec(str(tarball), allow_newer_glibc=True)
    layer = work / "layer"
    layers.build_layer(layer, spec)
    [python] = layer.glob("pylambda/python3.*/bin/python3")
    requirements = work / "requirements.txt"
    requirements.write_text((APP / "requirements.txt").read_text() + f"{MANGUM}\n")
    opt = layers.with_dependencies(layer, requirements, work / "deps", spec, work / "opt")
    site = next((opt / "python" / "lib").glob("python3.*/site-packages"))
    native, wrapped = work / "native", work / "wrapped"
    layers.package_function(APP, native)
    layers.package_function(APP, wrapped)
    (wrapped / "managed.py").write_text(ADAPTER)
    ric = baseline.packages(work / "ric")
    pip_site = work / "pip-site"  # as `sam build` installs a function's requirements: pip, into its folder
    # pip of this machine's Python, the stand-in's version, as sam build uses a Python of the runtime's version.
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(pip_site)]
    subprocess.run([*pip, "-r", str(requirements)], check=True, capture_output=True)
    zipped = as_sam_zips(pip_site, APP, work / "sam")
    readable_by_all(work)
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("PYTHON")}
    env["PATH"] = "/usr/bin:/bin"

    def ric_start(task: Path, path: str, read_only: bool = False) -> Start:
        environ = {**env, "PYTHONPATH": path}
        if read_only:  # as on Lambda's read-only /var/task
            environ["PYTHONDONTWRITEBYTECODE"] = "1"
        return lambda: Emulator(python, task, env=environ, args=["-m", "awslambdaric", "managed.handler"])

    return {
        NATIVE: lambda: Emulator(opt / "bootstrap", native, "app.app", env=env),
        "Mangum on pylambda": lambda: Emulator(opt / "bootstrap", wrapped, "managed.handler", env=env),
        "Mangum on awslambdaric": ric_start(wrapped, f"{ric}:{site}"),
        SAM_WAY: ric_start(zipped, str(ric), read_only=True),
    }


def warm(start: Start, requests: int) -> dict[str, float]:
    """CPU per request over ``requests`` warm requests, and peak RSS after them."""
    event = request_event()
    with start() as emulator:
        client = Client(emulator.port)
        for _ in range(30):
            answer = json.loads(client.invoke(event))
            assert answer["statusCode"] == 200, answer
        pid = emulator.runtime_pid()
        assert pid is not None
        before = runtime_cpu_ns(pid)
        for _ in range(requests):
            client.invoke(event)
        return {
            "CPU per request (µs)": (runtime_cpu_ns(pid) - before) / requests / 1e3,
            "peak RSS after the warm requests (MB)": peak_rss_kb(pid) / 1024,
        }


def measure(starts: dict[str, Start], cold: int, requests: int) -> dict[str, dict[str, float]]:
    """metric -> contestant -> median."""
    for start in starts.values():  # one unmeasured start each, to fill the page cache
        cold_start(start, request_event())
    samples = alternate(starts, cold, lambda start: cold_start(start, request_event()))
    for name, values in alternate(starts, 2, lambda start: warm(start, max(requests // 2, 1))).items():
        for metric, numbers in values.items():
            samples[name][metric] = numbers
    metrics = list(samples[NATIVE])
    return {metric: {name: statistics.median(samples[name][metric]) for name in starts} for metric in metrics}


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    others = CONTESTANTS[1:]
    lines = [
        f"FastAPI app (functions/webapi), stand-in CPython {sys.version_info.major}.{sys.version_info.minor};"
        f" medians of {args.cold} cold starts and 2 turns of {args.requests} warm requests per contestant.",
        "",
        "| pylambda native / | " + " | ".join(others) + " |",
        "| --- |" + " ---: |" * len(others),
    ]
    for metric, values in results.items():
        lines.append(f"| {metric} | " + " | ".join(f"{values[NATIVE] / values[o]:.2f}x" for o in others) + " |")
    lines += ["", "| metric | " + " | ".join(CONTESTANTS) + " |", "| --- |" + " ---: |" * len(CONTESTANTS)]
    for metric, values in results.items():
        lines.append(f"| {metric} | " + " | ".join(f"{values[name]:.1f}" for name in CONTESTANTS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=10, help="cold starts per contestant (default: 10)")
    parser.add_argument("--requests", type=int, default=1000, help="warm requests per contestant (default: 1000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results = measure(lay_out(Path(scratch)), args.cold, args.requests)
    write_results(args.out, "web_apps", report(results, args), results)


if __name__ == "__main__":
    main()
