"""Cold start with and without the layer's byte-compiled .pyc files, under the real emulator.

    .venv/bin/python benchmarks/pyc_cold_start.py [--python SOURCE] [--starts 10]

Builds the layer with a bundled interpreter (by default the offline stand-in
made from this machine's Python; --python takes anything build.py --python
does), makes a copy without any __pycache__, and starts a minimal function on
each in turn. PYTHONDONTWRITEBYTECODE=1 stands in for Lambda's read-only /opt,
where the copy without .pyc files would compile on every cold start. Reports
the emulator's own "INIT REPORT" duration: the time from starting the
bootstrap to the runtime asking for its first event.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pylambda_build import layers, standin
from pylambda_build.emulator import Emulator


def init_ms(layer: Path, task_root: Path) -> float:
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/nonexistent"}
    with Emulator(layer / "bootstrap", task_root, env=env) as emulator:
        emulator.invoke("{}")
        logs = emulator.wait_for_output("INIT REPORT")
    match = re.search(r"INIT REPORT\(durationMs: ([\d.]+)", logs)
    assert match, logs
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", help="interpreter source for build.py (default: the offline stand-in)")
    parser.add_argument("--starts", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        source = args.python or str(standin.make_tarball(work))
        compiled = work / "compiled"
        # The offline stand-in was built on this machine, with a newer glibc than Lambda's.
        layers.build_layer(compiled, layers.LayerSpec(source, allow_newer_glibc=args.python is None))
        plain = work / "plain"
        shutil.copytree(compiled, plain)
        for cache in list(plain.rglob("__pycache__")):
            shutil.rmtree(cache)
        task_root = work / "task"
        task_root.mkdir()
        (task_root / "app.py").write_text("def handler(event, context):\n    return 1\n")
        times: dict[str, list[float]] = {"with .pyc": [], "without .pyc": []}
        for _ in range(args.starts):  # alternate, so drift on a noisy machine hits both alike
            times["with .pyc"].append(init_ms(compiled, task_root))
            times["without .pyc"].append(init_ms(plain, task_root))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:13} median init {median:7.1f} ms over {args.starts} cold starts")
    print(f"ratio without/with: {medians['without .pyc'] / medians['with .pyc']:.1f}x")


if __name__ == "__main__":
    main()
