"""Finding the user's handler from ``_HANDLER``.

``_HANDLER`` names a function in a module under the task root: ``app.handler``,
``pkg.sub.mod.handler`` or ``dir/mod.handler``. The module is imported once,
at init, so its top-level code (clients, config) runs once per process, not
once per invoke. Each way this can fail maps to the error type the managed
Python runtime reports for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from . import web_apps
from .errors import (
    BUILT_IN_MODULE_CONFLICT,
    HANDLER_NOT_FOUND,
    IMPORT_MODULE_ERROR,
    MALFORMED_HANDLER_NAME,
    USER_CODE_SYNTAX_ERROR,
    RuntimeFault,
)

Handler = Callable[[Any, Any], Any]

# One segment of a module path or the function name. Hyphens are allowed
# because import_module accepts a file named my-func.py, and people ship them.
# Anything else ("..", "/abs", "~", empty segments) is refused before any import.
_SEGMENT = re.compile(r"[\w-]+")


def load_handler(spec: str, code_roots: list[str]) -> Handler:
    """Import the module ``spec`` names and return its handler function.

    ``code_roots`` are the only directories the module may come from: the task
    root and the dependency-layer directories. Anything else (the standard
    library, the runtime itself) is refused before it is imported.
    """
    module_name, function_name = parse_handler_name(spec)
    _refuse_module_outside(module_name, code_roots)
    try:
        module = importlib.import_module(module_name)
    # The two documents as the managed runtime writes them: where a syntax
    # error is, in its own layout; no frames for a module that cannot be found.
    except SyntaxError as exc:
        where = f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}'
        raise RuntimeFault(USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {exc}", [where]) from exc
    except ImportError as exc:
        raise RuntimeFault(IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {exc}") from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise RuntimeFault(HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'")
    if not callable(handler):
        raise RuntimeFault(
            HANDLER_NOT_FOUND,
            f"Handler '{function_name}' on module '{module_name}' is a {type(handler).__name__}, not a function",
        )
    return web_apps.serve(handler, spec, os.environ)


def parse_handler_name(spec: str) -> tuple[str, str]:
    """Split ``dir/pkg.mod.function`` (or ``pkg.mod:app``, as ASGI servers write it) into (``dir.pkg.mod``,
    ``function``), or refuse it."""
    module_path, dot, function_name = spec.rpartition(":" if ":" in spec else ".")
    if not dot:  # the managed runtime's words for a name without a function
        message = f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)"
        raise RuntimeFault(MALFORMED_HANDLER_NAME, message)
    segments = module_path.replace("/", ".").split(".")
    if not all(_SEGMENT.fullmatch(part) for part in [*segments, function_name]):
        raise RuntimeFault(
            MALFORMED_HANDLER_NAME,
            f"Bad handler '{spec}': expected 'module.function', where module is a path of "
            "names under the task root separated by '.' or '/'",
        )
    return ".".join(segments), function_name


def _refuse_module_outside(module_name: str, code_roots: list[str]) -> None:
    """Refuse a handler module that Python would find outside ``code_roots``.

    The runtime has imported part of the standard library before the handler
    loads, so a user's ``json.py`` or ``logging.py`` would silently lose to it
    and the error would be a baffling 'handler missing'; and a name such as
    ``antigravity.handler`` must not run standard-library code. Only the top
    level is looked up: finding a submodule would import its parents.
    """
    top = module_name.partition(".")[0]
    loaded = sys.modules.get(top)
    if top in sys.builtin_module_names:
        origins: list[str] = []
    elif loaded is not None:
        origins = [getattr(loaded, "__file__", None) or ""]
    else:
        spec = importlib.util.find_spec(top)
        if spec is None:
            return  # the import reports it as missing, with AWS's message
        origins = list(spec.submodule_search_locations or [spec.origin or ""])
    inside = bool(origins) and all(any(_is_under(origin, root) for root in code_roots) for origin in origins)
    if not inside:
        raise RuntimeFault(
            BUILT_IN_MODULE_CONFLICT,
            f"Cannot use '{top}' as a handler module: that name belongs to a module outside the function's code "
            "(Python's own or the runtime's); rename the file",
        )


def _is_under(path: str, directory: str) -> bool:
    directory = os.path.join(os.path.abspath(directory), "")
    return bool(path) and os.path.abspath(path).startswith(directory)
