"""JSON in, JSON out: decoding events and encoding handler results as the managed Python runtime does.

Lambda hands the runtime the event as raw bytes and takes the result as raw
bytes. A function moved from the managed Python 3.12+ runtimes must give its
callers the same bytes here, so the result is encoded by that runtime's rules:
``Decimal`` with every digit as written (``19.90``, ``1E+2``), ``bytes``
decoded as UTF-8 wherever they sit, namedtuples (anything with ``_asdict``)
as objects, NaN and Infinity as the tokens Python's own ``json`` reads, and
non-ASCII text unescaped. A top-level ``bytes`` result goes out untouched.

The standard library's C encoder does the work. It writes everything but
namedtuples the same way, so a quick look at the types the result holds
(``gc.get_referents``, level by level, in C) decides whether it can take the
result as it is; only results holding other types are first walked in Python.

Both directions can fail on user data; each failure becomes a ``RuntimeFault``
with AWS's error type and the managed runtime's message, so one bad event or
result fails that invoke only.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from .errors import MARSHAL_ERROR, UNMARSHAL_ERROR, RuntimeFault

JSON = "application/json"
# What the managed runtime sends for a handler that returns bytes: passed through untouched.
RAW_BYTES = "application/unknown"

# What stdlib's C encoder writes exactly as the managed runtime's encoder does.
_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None), dict, list, tuple})
# Deeper than this, the C encoder would run out of recursion anyway: the careful path decides.
_MAX_DEPTH = 900
# What a JSON string must escape: a quote, a backslash, a control character. Each looked
# for on its own (memchr): far cheaper than an encoder's pass over a large string.
_NEEDS_ESCAPE = tuple(bytes([byte]) for byte in b'"\\' + bytes(range(0x20)))
# A string result this long is sent as pieces rather than copied once more between quotes.
_LARGE = 64 * 1024


def decode_event(body: bytes, content_type: str | None = JSON) -> Any:
    """The event: parsed JSON, or the raw bytes when the invoker sent another content type.

    As in the managed runtime, only ``application/json`` is parsed (Lambda
    sends that for every ordinary invoke); invalid JSON or bytes that are not
    UTF-8 fail this invoke.
    """
    if content_type != JSON:
        return body
    if not body:
        raise RuntimeFault(UNMARSHAL_ERROR, "Unable to unmarshal input: the event is empty; send JSON, such as {}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RuntimeFault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None


def encode_result(result: Any) -> tuple[bytes | list[bytes], str]:
    """Serialise the handler's result and name its content type.

    The body is bytes, or for a string result the pieces to send one after
    the other (the quotes and the text: a large result is not copied again
    to put quotes around it).
    """
    if isinstance(result, bytes):
        return result, RAW_BYTES
    try:
        if type(result) is str:  # the commonest large result: no encoder, one copy
            body = result.encode()
            if not any(byte in body for byte in _NEEDS_ESCAPE):
                return ([b'"', body, b'"'] if len(body) > _LARGE else b'"%b"' % body), JSON
        return _encode(result).encode(), JSON
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeError is a ValueError
        raise RuntimeFault(MARSHAL_ERROR, f"Unable to marshal response: {exc}") from None


def _encode(result: Any) -> str:
    """JSON text of ``result``, as the managed runtime writes it."""
    decimal = sys.modules.get("decimal")  # a Decimal exists only once something has imported decimal
    if _holds_only(_PLAIN if decimal is None else _plain_and(decimal.Decimal), result):
        try:
            return _write(result)
        except TypeError:  # a key JSON cannot hold, in the standard library's words: found again below
            pass
    return _write(_prepare(result, set()))


def _write(result: Any) -> str:
    """Run stdlib's encoder; with Decimals, put each one's digits where its token was written."""
    try:
        return _encoder.encode(result)
    except _HoldsDecimals:
        pass
    numbers: list[str] = []
    text = json.JSONEncoder(ensure_ascii=False, default=_stand_in(numbers)).encode(result)
    # Each Decimal was written as the same quoted token, in order.
    parts = text.split(f'"{_decimal_token()}"')
    if len(parts) != len(numbers) + 1:  # a string of the result spelt the token: not a guess to make
        raise ValueError("a string in the result collides with the Decimal placeholder; try again")
    pieces = [parts[0]]
    for number, part in zip(numbers, parts[1:], strict=True):
        pieces += (number, part)
    return "".join(pieces)


class _HoldsDecimals(Exception):
    """Raised by the shared encoder at the first Decimal: the result is written again, keeping their digits."""


def _no_decimals(value: Any) -> Any:
    """The shared encoder's ``default``: what JSON cannot hold fails as it does in the managed runtime."""
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(value, decimal.Decimal):
        raise _HoldsDecimals
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Built once for the common case: results without Decimals need no state of their own.
_encoder = json.JSONEncoder(ensure_ascii=False, default=_no_decimals)


@functools.cache
def _plain_and(decimal_type: type) -> frozenset[type]:
    return _PLAIN | {decimal_type}


def _holds_only(types: frozenset[type], result: Any) -> bool:
    """Whether every object in ``result`` is of one of ``types`` (dict keys that are not ``str`` included).

    Walks level by level in C: the containers' referents are their items (a
    dict with only ``str`` keys gives just its values). Anything else stops
    the walk, and so does a structure deeper than the encoder could go.
    """
    level, depth = [result], 0
    while types.issuperset(map(type, level)):
        if not level:
            return True
        depth += 1
        if depth > _MAX_DEPTH:
            return False
        level = gc.get_referents(*level)
    return False


def _prepare(value: Any, path: set[int]) -> Any:
    """``value`` with what stdlib's encoder would write otherwise turned into what it writes right.

    Namedtuples and other objects with ``_asdict`` become dicts, ``bytes``
    become text (keys too); what is left (Decimals, objects JSON cannot hold)
    is for the encoder's ``default``. ``path`` holds the containers being
    walked, to report a cycle as the encoder would.
    """
    if isinstance(value, (str, int, float)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode()
    as_dict = getattr(value, "_asdict", None)
    if callable(as_dict):
        try:
            fields = as_dict()
        except TypeError:  # not the namedtuple method after all
            pass
        else:
            if not isinstance(fields, dict):
                raise TypeError(f"_asdict() must return a dict, not {type(fields).__name__}")
            value = fields
    if not isinstance(value, (list, tuple, dict)):
        return value
    if id(value) in path:
        raise ValueError("Circular reference detected")
    path.add(id(value))
    if isinstance(value, dict):
        prepared: Any = {_key(key): _prepare(item, path) for key, item in value.items()}
    else:
        prepared = [_prepare(item, path) for item in value]
    path.discard(id(value))
    return prepared


def _key(key: Any) -> Any:
    """A dict key as JSON can hold it; the managed runtime's error for one it cannot."""
    if isinstance(key, bytes):
        return key.decode()
    if not isinstance(key, (str, int, float)) and key is not None:
        raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
    return key


def _stand_in(numbers: list[str]) -> Callable[[Any], Any]:
    """The encoder's ``default``: a Decimal's digits are kept aside and a token written in their place."""

    def default(value: Any) -> Any:
        decimal = sys.modules.get("decimal")
        if decimal is not None and isinstance(value, decimal.Decimal):
            if value.is_nan():
                return float("nan")
            numbers.append(str(value))
            return _decimal_token()
        return _no_decimals(value)

    return default


_token = ""


def _decimal_token() -> str:
    """A string no result holds by chance: random, made the first time a Decimal is encoded."""
    global _token
    if not _token:
        _token = f"pylambda-decimal-{os.urandom(16).hex()}"
    return _token
