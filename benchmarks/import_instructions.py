"""Instructions (callgrind) that importing each runtime costs, per interpreter: a count the load cannot disturb.

    ./dev python benchmarks/import_instructions.py [--interpreters standin,3.15]

For each interpreter, ``python -c "import X"`` runs under valgrind's callgrind
and the instructions of ``python -c "pass"`` are taken off, for: the runtime
(``pylambda.runtime`` from a layer built here), the official client
(``awslambdaric.bootstrap``, its wheel for that version) and what a runtime on
the standard library's http.client imports at the least (``http.client``,
``logging``, ``json``). ``standin`` is the Python running this script (this
machine's 3.11, which the stand-in layer bundles); 3.13 to 3.15 are Debian sid's, in the cached root
(``testkit/sid_root.py``), which gets valgrind from Debian the first time.
Everything is byte-compiled first, as a function ships.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pylambda_build import layers
from testkit import baseline, sid_root

PROGRAMS = {
    "import pylambda.runtime": "import pylambda.runtime",
    "import awslambdaric.bootstrap": "import awslambdaric.bootstrap",
    "import http.client, logging, json": "import http.client, logging, json",
}
TOTAL = re.compile(r"^summary: (\d+)", re.MULTILINE)


def instructions(prefix: list[str], python: str, program: str, path: Path, scratch: Path) -> int:
    """Instructions of running ``program`` (with ``path`` first on sys.path) under callgrind."""
    out = scratch / "callgrind.out"
    code = f"import sys; sys.path.insert(0, {str(path)!r}); {program}"
    command = [*prefix, "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python, "-c", code]
    subprocess.run(command, check=True, capture_output=True, cwd=scratch)
    found = TOTAL.search(out.read_text())
    assert found, out.read_text()[:500]
    return int(found.group(1))


def measure(name: str, scratch: Path) -> dict[str, float]:
    """Millions of instructions for each program on one interpreter, net of the interpreter's own start-up."""
    layer = scratch / "layer"
    layers.build_layer(layer, layers.LayerSpec("none"))
    prefix: list[str] = []
    if name == "standin":
        python = sys.executable
        ric = baseline.packages(scratch / "ric")
    else:
        root = sid_root.ensure()
        if not (root / "usr" / "bin" / "valgrind").exists():
            install = "apt-get -o Acquire::Check-Valid-Until=false update -qq && apt-get install -y -qq valgrind"
            subprocess.run([*sid_root.enter(root, []), "sh", "-c", install], check=True, capture_output=True)
        prefix = sid_root.enter(root, [scratch])
        python = f"/usr/bin/python{name}"
        ric = baseline.packages_for(name, scratch / "ric")
    compile_all = [*prefix, python, "-m", "compileall", "-q", str(scratch)]
    subprocess.run(compile_all, check=True, capture_output=True, cwd=scratch)
    paths = {"import pylambda.runtime": layer / "pylambda" / "runtime", "import awslambdaric.bootstrap": ric}
    empty = instructions(prefix, python, "pass", scratch, scratch)
    return {
        label: (instructions(prefix, python, program, paths.get(label, scratch), scratch) - empty) / 1e6
        for label, program in PROGRAMS.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interpreters", default="standin,3.15", help="comma-separated (default: standin,3.15)")
    args = parser.parse_args()
    names = args.interpreters.split(",")
    results = {}
    for name in names:
        with tempfile.TemporaryDirectory() as scratch:
            results[name] = measure(name, Path(scratch))
    print(f"| million instructions | {' | '.join(names)} |")
    print(f"| --- |{' ---: |' * len(names)}")
    for label in PROGRAMS:
        print(f"| {label} | {' | '.join(f'{results[name][label]:.0f} M' for name in names)} |")


if __name__ == "__main__":
    main()
