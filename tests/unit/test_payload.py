"""Decoding events and encoding results, and what happens to data that will not go."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pylambda import errors
from pylambda.errors import RuntimeFault
from pylambda.payload import decode_event, encode_result

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_values)
def test_any_json_value_survives_a_round_trip(value: Any) -> None:
    body, content_type = encode_result(value)
    assert content_type == "application/json"
    assert decode_event(body) == value


@given(st.binary())
def test_arbitrary_bytes_either_decode_or_fail_as_unmarshal_error(body: bytes) -> None:
    try:
        decode_event(body)
    except RuntimeFault as fault:
        assert fault.error_type == errors.UNMARSHAL_ERROR


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe\xfa", b'{"a": 1}{"b": 2}'])
def test_undecodable_event_is_unmarshal_error(body: bytes) -> None:
    with pytest.raises(RuntimeFault) as caught:
        decode_event(body)
    assert caught.value.error_type == errors.UNMARSHAL_ERROR
    assert caught.value.message.startswith("Unable to unmarshal input: ")


def test_deeply_nested_event_is_unmarshal_error_not_a_crash() -> None:
    with pytest.raises(RuntimeFault) as caught:
        decode_event(b"[" * 100_000 + b"]" * 100_000)
    assert caught.value.error_type == errors.UNMARSHAL_ERROR


def test_non_ascii_text_is_sent_as_utf8() -> None:
    body, _ = encode_result({"greeting": "grüß dich ☃"})
    assert body == '{"greeting": "grüß dich ☃"}'.encode()


def test_decimal_is_sent_with_every_digit_it_has() -> None:
    result = {"count": Decimal("3"), "price": Decimal("19.90"), "pi": Decimal("3.14159265358979323846264")}
    body, _ = encode_result(result)
    assert body == b'{"count": 3, "price": 19.90, "pi": 3.14159265358979323846264}'


def test_a_string_result_without_escapes_is_quoted_as_it_is() -> None:
    assert encode_result("x" * 10) == (b'"xxxxxxxxxx"', "application/json")
    assert encode_result('say "hi"\n') == (b'"say \\"hi\\"\\n"', "application/json")


def test_an_event_of_another_content_type_reaches_the_handler_as_bytes() -> None:
    assert decode_event(b"a,b,c", "text/csv") == b"a,b,c"
    assert decode_event(b"", None) == b""


def test_bytes_are_sent_untouched() -> None:
    assert encode_result(b"\x00\x01raw") == (b"\x00\x01raw", "application/unknown")


def circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ({1, 2}, "Object of type set is not JSON serializable"),
        (object(), "Object of type object is not JSON serializable"),
        (bytearray(b"x"), "Object of type bytearray is not JSON serializable"),
        ({"b": b"\xff"}, "can't decode byte 0xff in position 0"),
        (circular(), "Circular reference detected"),
        ("\ud800", "surrogates not allowed"),
    ],
)
def test_unserialisable_result_is_marshal_error(result: Any, reason: str) -> None:
    with pytest.raises(RuntimeFault) as caught:
        encode_result(result)
    assert caught.value.error_type == errors.MARSHAL_ERROR
    assert caught.value.message.startswith("Unable to marshal response: ")
    assert reason in caught.value.message
