"""Error documents: chained causes, bounded messages, masked credentials."""

from __future__ import annotations

import pytest
from pylambda.errors import MAX_MESSAGE, error_document, redact_secrets


def raise_chained() -> None:
    try:
        int("not a number")
    except ValueError as exc:
        raise LookupError("no price for sku 42") from exc


def test_chained_cause_comes_first_joined_as_python_prints_it() -> None:
    try:
        raise_chained()
    except LookupError as exc:
        trace = error_document(exc)["stackTrace"]
    text = "".join(trace)
    assert text.index('int("not a number")') < text.index("ValueError: invalid literal")
    assert text.index("ValueError: invalid literal") < text.index("The above exception was the direct cause")
    assert text.index("The above exception was the direct cause") < text.index('raise LookupError("no price')


def test_suppressed_context_is_left_out() -> None:
    try:
        try:
            {}["x"]
        except KeyError:
            raise RuntimeError("clean") from None
    except RuntimeError as exc:
        trace = "".join(error_document(exc)["stackTrace"])
    assert "KeyError" not in trace


def test_a_cycle_in_the_chain_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert len(error_document(first)["stackTrace"]) < 10


def test_long_messages_are_cut_with_a_note_of_their_length() -> None:
    message = error_document(ValueError("y" * (MAX_MESSAGE * 3)))["errorMessage"]
    assert len(message) < MAX_MESSAGE + 100
    assert message.endswith(f"[truncated: {MAX_MESSAGE * 3} characters in all]")


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"])
def test_credentials_are_masked_in_messages_and_frames(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, "s3cr3t-value-123")
    try:
        raise PermissionError("denied for s3cr3t-value-123")
    except PermissionError as exc:
        document = error_document(exc)
    assert document["errorMessage"] == f"denied for <{name} redacted>"
    assert all("s3cr3t-value-123" not in frame for frame in document["stackTrace"])


def test_short_values_are_not_treated_as_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a")
    assert redact_secrets("a banana") == "a banana"
