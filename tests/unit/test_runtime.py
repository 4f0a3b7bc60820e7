"""One pass of the loop: what the runtime sends back for each kind of handler outcome."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from pylambda import errors
from pylambda.context import FunctionInfo
from pylambda.runtime import layer_for_another_python, serve
from pylambda.runtime_api import Invocation

if TYPE_CHECKING:
    from pathlib import Path

    from pylambda.errors import ErrorDocument

FUNCTION = FunctionInfo({"AWS_LAMBDA_FUNCTION_NAME": "unit"})


class RecordingAPI:
    """Stands in for the Runtime API client and keeps what the loop posted."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, bytes, str]] = []
        self.errors: list[tuple[str, ErrorDocument]] = []
        self.xray_causes: list[str] = []

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        self.responses.append((request_id, body, content_type))

    def post_error(self, request_id: str, error: ErrorDocument, xray_cause: str) -> None:
        self.errors.append((request_id, error))
        self.xray_causes.append(xray_cause)


def invocation(body: bytes = b"{}", **headers: str) -> Invocation:
    fields = {"Lambda-Runtime-Aws-Request-Id": "req-1", "Content-Type": "application/json", **headers}
    return Invocation("req-1", body, fields)


def run(handler: Any, body: bytes = b"{}", **headers: str) -> RecordingAPI:
    api = RecordingAPI()
    serve(api, handler, FUNCTION, invocation(body, **headers))  # type: ignore[arg-type]
    return api


@pytest.fixture(autouse=True)
def no_trace_id() -> Iterator[None]:
    saved = os.environ.pop("_X_AMZN_TRACE_ID", None)
    yield
    os.environ.pop("_X_AMZN_TRACE_ID", None)
    if saved is not None:
        os.environ["_X_AMZN_TRACE_ID"] = saved


def test_result_is_posted_as_json() -> None:
    api = run(lambda event, context: {"got": event, "id": context.aws_request_id}, b'{"n": 1}')
    assert api.responses == [("req-1", b'{"got": {"n": 1}, "id": "req-1"}', "application/json")]
    assert api.errors == []


def test_handler_exception_is_posted_with_its_class_name_and_user_frames_only() -> None:
    def handler(event: Any, context: Any) -> None:
        raise KeyError("sku")

    api = run(handler)
    [(request_id, error)] = api.errors
    assert request_id == "req-1"
    assert error["errorType"] == "KeyError"
    assert error["errorMessage"] == "'sku'"
    assert error["requestId"] == "req-1"
    assert len(error["stackTrace"]) == 1
    assert "in handler" in error["stackTrace"][0]
    assert 'raise KeyError("sku")' in error["stackTrace"][0]


def test_exception_with_unprintable_message_is_still_reported() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def handler(event: Any, context: Any) -> None:
        raise Weird()

    [(_, error)] = run(handler).errors
    assert error["errorMessage"] == "<unprintable Weird object>"


@pytest.mark.parametrize("exit_call", [lambda: sys.exit(3), lambda: (_ for _ in ()).throw(KeyboardInterrupt)])
def test_sys_exit_and_keyboard_interrupt_fail_the_invoke_instead_of_the_process(exit_call: Any) -> None:
    [(_, error)] = run(lambda event, context: exit_call()).errors
    assert error["errorType"] in ("SystemExit", "KeyboardInterrupt")


def test_invalid_json_event_is_an_unmarshal_error_and_the_handler_is_not_called() -> None:
    calls = []
    api = run(lambda event, context: calls.append(event), b"{oops")
    [(_, error)] = api.errors
    assert error["errorType"] == errors.UNMARSHAL_ERROR
    assert calls == []


def test_unserialisable_result_is_a_marshal_error() -> None:
    [(_, error)] = run(lambda event, context: {"ids": {1, 2}}).errors
    assert error["errorType"] == errors.MARSHAL_ERROR
    assert error["stackTrace"] == []


def test_garbled_client_context_fails_only_that_invoke() -> None:
    api = run(lambda event, context: "ok", **{"Lambda-Runtime-Client-Context": "{nope"})
    [(_, error)] = api.errors
    assert error["errorType"] == errors.CONTEXT_UNMARSHAL_ERROR
    assert run(lambda event, context: "ok").responses[0][1] == b'"ok"'


def test_trace_id_is_set_for_the_invoke_and_cleared_after() -> None:
    seen = []
    handler = lambda event, context: seen.append(os.environ.get("_X_AMZN_TRACE_ID"))  # noqa: E731
    run(handler, **{"Lambda-Runtime-Trace-Id": "Root=1-abc;Parent=def;Sampled=1"})
    run(handler)
    assert seen == ["Root=1-abc;Parent=def;Sampled=1", None]


def test_a_failed_invoke_is_logged_as_one_line_starting_with_its_type_and_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def handler(event: Any, context: Any) -> None:
        raise ValueError("bad input")

    run(handler)
    out = capsys.readouterr().out
    # One line, one CloudWatch event: the traceback's line breaks are carriage returns.
    [line] = out.split("\n")[:-1]  # (splitlines() would split at \r too)
    assert line.startswith("[ERROR] ValueError: bad input\rTraceback (most recent call last):\r")


def test_error_document_is_valid_json_for_any_message() -> None:
    def handler(event: Any, context: Any) -> None:
        raise ValueError('naïve \u2603 \x00 "quoted"')

    [(_, error)] = run(handler).errors
    assert json.loads(json.dumps(error))["errorMessage"] == 'naïve \u2603 \x00 "quoted"'


def test_sigterm_shutdown_is_not_swallowed_by_the_invoke() -> None:
    from pylambda.shutdown import Shutdown

    def handler(event: Any, context: Any) -> None:
        raise Shutdown

    with pytest.raises(Shutdown):
        run(handler)


def test_a_refused_post_fails_only_that_invoke(capsys: pytest.CaptureFixture[str]) -> None:
    from pylambda.runtime_api import RuntimeAPIRefused

    class RefusingAPI(RecordingAPI):
        def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
            raise RuntimeAPIRefused("POST .../response answered 413: too large", 413)

    serve(RefusingAPI(), lambda event, context: "big", FUNCTION, invocation())  # type: ignore[arg-type]
    assert "answered 413" in capsys.readouterr().err


def test_a_dependency_layer_for_other_pythons_is_named_newest_first_and_one_for_this_python_is_not(
    tmp_path: Path,
) -> None:
    assert layer_for_another_python(str(tmp_path)) is None  # no dependency layer at all
    for version in ("3.9", "3.13"):
        (tmp_path / "python" / "lib" / f"python{version}" / "site-packages").mkdir(parents=True)
    message = layer_for_another_python(str(tmp_path))
    assert message is not None and "python3.13/site-packages is for Python 3.13, but the runtime runs" in message
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (tmp_path / "python" / "lib" / ours / "site-packages").mkdir(parents=True)
    assert layer_for_another_python(str(tmp_path)) is None


def test_once_the_runtime_is_exiting_a_sigterm_interrupts_nothing() -> None:
    """A worker on its way out (threads joining, atexit hooks) gets no Shutdown from the supervisor's SIGTERM."""
    import signal

    from pylambda import shutdown

    before = signal.getsignal(signal.SIGTERM)
    try:
        shutdown.install()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
        shutdown.exiting()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
