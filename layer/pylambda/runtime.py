"""The runtime loop: ask Lambda for an event, run the handler, send back what it gave.

    init:    load the handler named by _HANDLER  (failure -> POST init/error, exit)
    forever: GET  invocation/next                 (blocks; Lambda freezes us here)
             result = handler(event, context)     (awaited, for an async def handler)
             POST invocation/{id}/response        (or invocation/{id}/error; streamed if the handler yields)

Everything else (HTTP, context, errors, logs, JSON, event loop, streaming,
shutdown) lives in its own module.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from . import concurrency, event_loop, logs, request_context, shutdown, streaming
from .context import TENANT_ID, TRACE_ID, FunctionInfo, LambdaContext
from .errors import (
    IMPORT_MODULE_ERROR,
    INVALID_ENTRYPOINT,
    USER_CODE_FAILURES,
    RuntimeFault,
    error_document,
    xray_cause,
)
from .handler_loader import Handler, load_handler
from .payload import decode_event, encode_result
from .runtime_api import Invocation, RuntimeAPIClient, RuntimeAPIError, RuntimeAPIRefused, parse_address


def main(layer_root: str, unusable_wrapper: bool = False) -> int:
    """Run the runtime until Lambda stops the process; the return value is the exit status.

    ``unusable_wrapper``: the bootstrap could not run AWS_LAMBDA_EXEC_WRAPPER, which fails the init.
    """
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        return _fatal("AWS_LAMBDA_RUNTIME_API is not set: run this under Lambda or the Runtime Interface Emulator")
    try:
        parse_address(address)
    except RuntimeAPIError as exc:
        return _fatal(f"{exc}: run this under Lambda or the Runtime Interface Emulator")
    if not os.environ.get("_HANDLER"):  # still reported to the API below, as the init's error
        _fatal("_HANDLER is not set: set the function's handler, e.g. app.handler (module.function)")
    logs.install(os.environ)
    shutdown.install()
    try:
        api = RuntimeAPIClient(address)
        function = FunctionInfo(os.environ)
        if (count := concurrency.slots(os.environ)) > 1:  # Lambda Managed Instances: workers, each with its own init
            concurrency.run_workers(
                count,
                concurrency_mode(api),
                address,
                api,
                initialise=lambda: initialise(api, layer_root, unusable_wrapper),
                loop=lambda handler, slot: serve_forever(RuntimeAPIClient(address, slot), handler, function),
            )
        handler = initialise(api, layer_root, unusable_wrapper)
        if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":  # imported only for SnapStart
            from . import snapstart

            snapstart.snapshot_and_restore(api)
        serve_forever(api, handler, function)
    except RuntimeAPIError as exc:
        return _fatal(f"lost the Runtime API at {address}: {exc}")
    except shutdown.Shutdown:  # SIGTERM: returning lets atexit hooks run
        return 0
    except KeyboardInterrupt:  # Ctrl-C in a local run, while waiting for an event
        return 130
    finally:
        shutdown.exiting()


def serve_forever(api: RuntimeAPIClient, handler: Handler, function: FunctionInfo) -> NoReturn:
    """The loop: one event after another, for as long as Lambda keeps the process."""
    while True:
        serve(api, handler, function, api.next_invocation())


def initialise(api: RuntimeAPIClient, layer_root: str, unusable_wrapper: bool = False) -> Handler:
    """Put user code first on sys.path and in the working directory, then load the handler."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    code_roots = [task_root, *dependency_layer_paths(layer_root)]
    sys.path[:0] = code_roots
    os.chdir(task_root)
    if logs.debugging():  # what a problem report needs: which pylambda built the layer, which Python runs it
        logs.debug(f"pylambda {layer_version(layer_root)} on Python {sys.version.split()[0]} ({sys.executable})")
    stray = layer_for_another_python(layer_root)
    if stray is not None:
        sys.stderr.write(f"pylambda: {stray}\n")
    try:
        if unusable_wrapper:
            raise wrapper_fault(os.environ.get("AWS_LAMBDA_EXEC_WRAPPER", ""))
        # The runtime's own objects live as long as the process: frozen, no
        # collection ever walks them again (on 3.14+, the incremental collector
        # otherwise does, in the middle of the user's init: about 8 ms of a
        # boto3 client's creation on 3.15).
        gc.freeze()
        return load_handler(os.environ.get("_HANDLER", ""), code_roots)
    except RuntimeFault as fault:
        if stray is not None and fault.error_type == IMPORT_MODULE_ERROR:
            fault = RuntimeFault(fault.error_type, f"{fault.message} ({stray})", fault.stack_trace)
        fail_init(api, fault)
    # Whatever the module raises at import (even SystemExit) is the user's init error.
    except USER_CODE_FAILURES as exc:
        fail_init(api, exc)


def concurrency_mode(api: RuntimeAPIClient) -> str:
    """The concurrency model AWS_LAMBDA_CONCURRENCY_MODE asks for; a value that is none fails the init."""
    try:
        return concurrency.mode(os.environ)
    except RuntimeFault as fault:
        fail_init(api, fault)


def fail_init(api: RuntimeAPIClient, exc: BaseException) -> NoReturn:
    """Report a failed init to the logs and to Lambda, which tells the caller; then exit."""
    error = error_document(exc)
    logs.report_error(error)
    api.post_init_error(error)
    raise SystemExit(1) from None


def wrapper_fault(wrapper: str) -> RuntimeFault:
    """Why the wrapper script the function names cannot run, as the init's error."""
    problem = "is not an executable file" if os.path.exists(wrapper) else "does not exist"
    message = f"AWS_LAMBDA_EXEC_WRAPPER names {wrapper}, which {problem}; the function's init fails without it"
    return RuntimeFault(INVALID_ENTRYPOINT, message)


def layer_version(layer_root: str) -> str:
    """The version of pylambda that built the layer, as the layer records it in pylambda/VERSION."""
    try:
        with open(os.path.join(layer_root, "pylambda", "VERSION")) as recorded:
            return recorded.read().strip()
    except OSError:
        return "(version not recorded)"


def dependency_layer_paths(layer_root: str) -> list[str]:
    """Where the managed Python runtimes find packages from layers, so existing dependency layers work here too.

    Layers all unpack into the same directory as ours (/opt); those built for
    the managed runtimes keep packages in python/ and python/lib/pythonX.Y/site-packages.
    """
    python = os.path.join(layer_root, "python")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return [os.path.join(python, "lib", version, "site-packages"), python]


def layer_for_another_python(layer_root: str) -> str | None:
    """What is wrong when the only dependency layer attached was built for another Python; None when none is.

    A layer made for the managed python3.11 runtime keeps its packages in
    python/lib/python3.11/site-packages, where a 3.12 interpreter never looks:
    the handler's import would then fail with nothing but "No module named".
    One or two system calls when there is nothing to say (a layer for this Python, or none at all).
    """
    lib = os.path.join(layer_root, "python", "lib")
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    if os.path.isdir(os.path.join(lib, f"python{ours}", "site-packages")):
        return None
    try:
        found = [name for name in os.listdir(lib) if os.path.isdir(os.path.join(lib, name, "site-packages"))]
    except OSError:
        return None
    if not found:
        return None
    # The newest, by version: python3.13 before python3.9.
    folder = max(
        found, key=lambda name: [int(part) for part in name.removeprefix("python").split(".") if part.isdigit()]
    )
    theirs = folder.removeprefix("python")
    return (
        f"the dependency layer in {os.path.join(lib, folder, 'site-packages')} is for Python {theirs}, but the"
        f" runtime runs Python {ours}, which cannot import from it: build the dependency layer for {ours}"
        " (with the same --python as the runtime layer)"
    )


def serve(api: RuntimeAPIClient, handler: Handler, function: FunctionInfo, invocation: Invocation) -> None:
    """Handle one event from start to finish; no failure of the handler escapes."""
    request_id, headers = invocation.request_id, invocation.headers
    request_context.enter(request_id, headers.get(TENANT_ID), headers.get(TRACE_ID))
    try:
        context = LambdaContext(function, headers)
        result = handler(decode_event(invocation.body, headers.get("Content-Type")), context)
        if event_loop.is_awaitable(result):  # an async def handler
            result = event_loop.run(result)
        if streaming.is_stream(result):  # a handler that yields
            _deliver(streaming.send, api, request_id, result)
            return
        body, content_type = encode_result(result)
    # sys.exit() or KeyboardInterrupt in a handler fails that invoke and is
    # reported, instead of killing the process without a word. (SIGTERM's
    # Shutdown is not caught: it must end the loop.)
    except USER_CODE_FAILURES as exc:
        error = error_document(exc, request_id)
        logs.report_error(error)
        _deliver(api.post_error, request_id, error, xray_cause(exc))
    else:
        logs.flush()
        _deliver(api.post_response, request_id, body, content_type)


def _deliver(post: Callable[..., None], *args: Any) -> None:
    """POST a result or error; a refusal fails only this invoke.

    The API refuses with a 4xx when, say, a result is over the 6 MB limit
    (413): it has already failed the invoke towards the caller, so the runtime
    logs why and goes on to the next event. Transport failures propagate.
    """
    try:
        post(*args)
    except RuntimeAPIRefused as exc:
        sys.stderr.write(f"pylambda: {exc}\n")


def _fatal(message: str) -> int:
    """One clear line instead of a traceback: the reader is looking at Lambda's logs."""
    sys.stderr.write(f"pylambda: {message}\n")
    return 1
