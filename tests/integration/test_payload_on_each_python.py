"""Results encoded as the managed runtime encodes them on the Python under test, not only on this machine's.

Each CPython's ``json`` C encoder is its own build (3.14 rewrote its writer),
so the byte-for-byte comparison with awslambdaric's marshaller runs again on
the interpreter under test: on this machine's Python by default, and in
``./dev matrix`` on Debian's CPython 3.13, 3.14 and 3.15 with awslambdaric's
wheels for that version. Values come from a seeded generator (the corpus
travels to the other interpreter as a pickle), nested as handlers nest them.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pylambda_build import readable_by_all
from testkit import baseline, sid_root
from tests.conftest import ROOT, TEST_PYTHON

TYPES = """
import collections
Point = collections.namedtuple("Point", "x y")
"""

COMPARE = """
import json, os, pickle, sys
sys.path[:0] = sys.argv[1:4]
os.environ["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.13"
from awslambdaric.lambda_runtime_exception import FaultException
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller
from pylambda.errors import RuntimeFault
from pylambda.payload import encode_result

marshaller = LambdaMarshaller()


def theirs(value):
    try:
        body, _ = marshaller.marshal_response(value)
    except FaultException as fault:
        return fault.exception_type + ": " + fault.msg
    return (body if isinstance(body, bytes) else body.encode()).decode("utf-8", "backslashreplace")


def ours(value):
    try:
        body, _ = encode_result(value)
    except RuntimeFault as fault:
        return fault.error_type + ": " + fault.message
    return (b"".join(body) if isinstance(body, list) else body).decode("utf-8", "backslashreplace")


values = pickle.load(open(sys.argv[4], "rb"))
differences = [[repr(v), ours(v), theirs(v)] for v in values if ours(v) != theirs(v)]
print(json.dumps({"python": sys.version.split()[0], "compared": len(values), "differences": differences[:5]}))
"""


def text(rng: random.Random, low: int, high: int, length: int) -> str:
    return "".join(chr(rng.randrange(low, high)) for _ in range(rng.randrange(length)))


SCALARS: list[Callable[[random.Random], Any]] = [
    lambda rng: rng.choice([None, True, False]),
    lambda rng: rng.choice([0, -1, 2**63, -(2**80), rng.randrange(-(10**9), 10**9)]),
    lambda rng: rng.choice([math.nan, math.inf, -math.inf, -0.0, 0.1, 1e300, 5e-324, rng.uniform(-1e6, 1e6)]),
    lambda rng: text(rng, 0, 127, 12),  # control characters, quotes and backslashes among them
    lambda rng: text(rng, 160, 0x2FFF, 8),
    lambda rng: Decimal(rng.choice(["19.90", "1E+2", "-0", "NaN", "sNaN", "-Infinity", "0E-7", "3.1415926535897932"])),
    lambda rng: Decimal(rng.randrange(-(10**30), 10**30)).scaleb(rng.randrange(-40, 40)),
    lambda rng: text(rng, 32, 0x3000, 8).encode(),
    lambda rng: rng.random(),
]


def scalar(rng: random.Random) -> Any:
    return rng.choice(SCALARS)(rng)


def value(rng: random.Random, point: type, depth: int = 0) -> Any:
    if depth > 3 or rng.random() < 0.35:
        return scalar(rng)
    size = rng.randrange(5)
    kind = rng.randrange(4)
    if kind == 0:
        return [value(rng, point, depth + 1) for _ in range(size)]
    if kind == 1:
        return tuple(value(rng, point, depth + 1) for _ in range(size))
    if kind == 2:
        return point(value(rng, point, depth + 1), value(rng, point, depth + 1))
    keys = [rng.choice(["a", "é", "k" * rng.randrange(4), rng.randrange(100), True, None, 2.5]) for _ in range(size)]
    return {key: value(rng, point, depth + 1) for key in keys}


@pytest.fixture(scope="module")
def official_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """awslambdaric for the Python under test: this machine's copy, or its wheels for Debian's version."""
    folder = tmp_path_factory.mktemp("awslambdaric")
    if TEST_PYTHON is None:
        return baseline.packages(folder)
    return baseline.packages_for(TEST_PYTHON, folder)


def test_generated_results_are_encoded_as_awslambdaric_encodes_them_on_the_python_under_test(
    runtime_python: tuple[Path | None, Path], official_client: Path, tmp_path: Path
) -> None:
    root, python_dir = runtime_python
    (tmp_path / "corpus_types.py").write_text(TYPES)
    (tmp_path / "compare.py").write_text(COMPARE)
    sys.path.insert(0, str(tmp_path))
    try:
        import corpus_types

        rng = random.Random(20261203)
        values = [value(rng, corpus_types.Point) for _ in range(1500)]
        (tmp_path / "corpus.pickle").write_bytes(pickle.dumps(values))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("corpus_types", None)
    readable_by_all(tmp_path)
    layer = ROOT / "layer"
    command = [str(python_dir / "python3"), str(tmp_path / "compare.py")]
    command += [str(official_client), str(layer), str(tmp_path), str(tmp_path / "corpus.pickle")]
    if root is not None:
        command = [*sid_root.enter(root, [tmp_path, official_client, layer, python_dir]), *command]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["compared"] == 1500
    assert report["differences"] == [], report
    if TEST_PYTHON is not None:
        assert report["python"].startswith(TEST_PYTHON)
