"""JSON in, JSON out: decoding events and encoding handler results.

Lambda hands the runtime the event as raw bytes and takes the result as raw
bytes. Both directions can fail on user data; each failure becomes a
``RuntimeFault`` with AWS's error type, so one bad event or result fails that
invoke only.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import MARSHAL_ERROR, UNMARSHAL_ERROR, RuntimeFault

JSON = "application/json"
# What the managed runtime sends for a handler that returns bytes: passed through untouched.
RAW_BYTES = "application/unknown"


def _number_from_decimal(value: object) -> object:
    """Let ``Decimal`` (what boto3's DynamoDB layer returns) through as a JSON number."""
    # Imported here: only results JSON cannot encode get this far, and decimal
    # costs milliseconds of every cold start to import.
    from decimal import Decimal

    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Built once: json.dumps with options builds a new encoder per call.
# ensure_ascii=False sends UTF-8 as the managed 3.12+ runtimes do; allow_nan=False
# because NaN and Infinity are not JSON and would break the caller's parser.
_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_number_from_decimal)


def decode_event(body: bytes) -> Any:
    """Parse the event; invalid JSON or bytes that are not UTF-8 fail this invoke."""
    if not body:
        raise RuntimeFault(UNMARSHAL_ERROR, "Unable to unmarshal input: the event is empty; send JSON, such as {}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RuntimeFault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None


def encode_result(result: Any) -> tuple[bytes, str]:
    """Serialise the handler's result and name its content type."""
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), RAW_BYTES
    try:
        return _encoder.encode(result).encode(), JSON
    except (TypeError, ValueError, RecursionError) as exc:
        raise RuntimeFault(MARSHAL_ERROR, f"Unable to marshal response: {exc}") from None
