"""Results encoded byte for byte as the managed Python 3.12+ runtimes encode them.

The reference is the official client's own marshaller (awslambdaric's
``LambdaMarshaller``, configured as ``AWS_EXECUTION_ENV=AWS_Lambda_python3.13``
configures it), run in the same process on the same values: a fixed corpus of
what handlers return, then values hypothesis generates. The same body, or the
same ``Runtime.MarshalError`` message, every time.
"""

from __future__ import annotations

import datetime
import enum
import math
import os
from collections import OrderedDict, namedtuple
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pylambda.errors import RuntimeFault
from pylambda.payload import encode_result

Point = namedtuple("Point", "x y")


class Order(NamedTuple):
    sku: str
    price: Decimal


class Colour(enum.IntEnum):
    RED = 1


class Tag(enum.StrEnum):
    NEW = "new"


class WithAsDict:
    def _asdict(self) -> dict[str, Any]:
        return {"made": "by _asdict"}


@pytest.fixture(scope="module")
def official() -> Any:
    """awslambdaric's marshaller as the managed Python 3.13 runtime sets it up (ensure_ascii off)."""
    from awslambdaric.lambda_runtime_exception import FaultException
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

    previous = os.environ.get("AWS_EXECUTION_ENV")
    os.environ["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.13"
    try:
        marshaller = LambdaMarshaller()
    finally:
        if previous is None:
            del os.environ["AWS_EXECUTION_ENV"]
        else:
            os.environ["AWS_EXECUTION_ENV"] = previous

    def encode(value: Any) -> tuple[bytes, str] | tuple[str, str]:
        try:
            body, content_type = marshaller.marshal_response(value)
        except FaultException as fault:
            return fault.exception_type, fault.msg
        # The client sends text as UTF-8 (post_invocation_result), bytes as they are.
        return (body if isinstance(body, bytes) else body.encode()), content_type

    return encode


def ours(value: Any) -> tuple[bytes, str] | tuple[str, str]:
    try:
        body, content_type = encode_result(value)
    except RuntimeFault as fault:
        return fault.error_type, fault.message
    return (b"".join(body) if isinstance(body, list) else body), content_type


def loop() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


CORPUS = {
    "decimal with every digit": {"d": Decimal("3.14159265358979323846264")},
    "decimal exponent and trailing zero": {"l": [Decimal("1E+2")], "price": Decimal("19.90")},
    "decimal specials": [Decimal("NaN"), Decimal("-NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-0")],
    "decimal alone": Decimal("0.000001"),
    "decimal in a tuple in a dict": {"t": (Decimal("1.0"), Decimal("2.50"))},
    "nested bytes": {"b": b"abc", "deep": [{"x": b"\xc3\xa9t\xc3\xa9"}]},
    "bytes as a key": {b"key": 1},
    "bytes that are not utf-8": {"b": b"\xff\xfe"},
    "top-level bytes": b"\x00\x01raw",
    "top-level bytearray": bytearray(b"raw"),
    "namedtuple": Point(1, "x"),
    "namedtuples nested": {"points": [Point(1, 2), Point(Point(3, 4), None)]},
    "typed namedtuple with a decimal": [Order("A-1", Decimal("9.90"))],
    "an object with _asdict": {"o": WithAsDict()},
    "nan and infinities": [math.nan, math.inf, -math.inf],
    "nan in a dict": {"ratio": float("nan")},
    "non-ascii text": {"greeting": "grüß dich ☃ 日本 🎉"},
    "control characters and quotes": 'a\nb\t"c"\\d\x00\x1f\x7f\u2028',
    "tuples": (1, (2, 3), []),
    "int, float, bool and None keys": {1: "a", 2.5: "b", False: "c", None: "d"},
    "big ints": [2**64, -(2**100), 10**300],
    "int enum and str enum": {"c": Colour.RED, "t": Tag.NEW, Colour.RED: 1},
    "ordered dict": OrderedDict([("b", 1), ("a", 2)]),
    "plain str": "x" * 1000,
    "a large str, sent in pieces": "é" * 100_000,
    "a large str that needs escapes": "x" * 100_000 + "\n",
    "empty containers": {"a": [], "b": {}, "c": ()},
    "floats": [0.1, -0.0, 1e300, 5e-324, 1.0],
    "set": {1, 2},
    "frozenset nested": {"f": frozenset({1})},
    "datetime": {"at": datetime.datetime(2026, 12, 3, 16, 0, 0)},
    "an object": object(),
    "a cycle": loop(),
    "a tuple key": {(1, 2): "x"},
    "a decimal key": {Decimal("1"): "x"},
}


@pytest.mark.parametrize("value", list(CORPUS.values()), ids=list(CORPUS))
def test_each_corpus_result_is_encoded_exactly_as_the_managed_runtime_encodes_it(official: Any, value: Any) -> None:
    assert ours(value) == official(value)


def test_an_int_too_long_for_str_fails_with_the_same_message(official: Any) -> None:
    assert ours({"n": 10**5000}) == official({"n": 10**5000})


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and the infinities included
    | st.text()
    | st.decimals()  # NaN, signalling NaN and infinities included
    | st.text().map(str.encode)  # bytes that decode as UTF-8
)
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=5).map(tuple)
        | st.dictionaries(keys, children, max_size=5)
        | st.builds(Point, children, children)
        | st.builds(Order, st.text(), children)
    ),
    max_leaves=40,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(values)
def test_generated_results_are_encoded_byte_for_byte_as_the_managed_runtime_encodes_them(
    official: Any, value: Any
) -> None:
    assert ours(value) == official(value)
