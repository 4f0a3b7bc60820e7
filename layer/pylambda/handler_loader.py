"""Finding the user's handler from ``_HANDLER``.

``_HANDLER`` names a function in a module under the task root: ``app.handler``,
``pkg.sub.mod.handler`` or ``dir/mod.handler``. The module is imported once,
at init, so its top-level code (clients, config) runs once per process, not
once per invoke. Each way this can fail maps to the error type the managed
Python runtime reports for it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

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


def load_handler(spec: str, task_root: str) -> Handler:
    """Import the module ``spec`` names and return its handler function."""
    module_name, function_name = parse_handler_name(spec)
    _refuse_shadowed_module(module_name, task_root)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        where = f'  File "{exc.filename}", line {exc.lineno}\n    {(exc.text or "").strip()}\n'
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
    return handler  # type: ignore[no-any-return]


def parse_handler_name(spec: str) -> tuple[str, str]:
    """Split ``dir/pkg.mod.function`` into (``dir.pkg.mod``, ``function``), or refuse it."""
    module_path, dot, function_name = spec.rpartition(".")
    segments = module_path.replace("/", ".").split(".")
    if not dot or not all(_SEGMENT.fullmatch(part) for part in [*segments, function_name]):
        raise RuntimeFault(
            MALFORMED_HANDLER_NAME,
            f"Bad handler '{spec}': expected 'module.function', where module is a path of "
            "names under the task root separated by '.' or '/'",
        )
    return ".".join(segments), function_name


def _refuse_shadowed_module(module_name: str, task_root: str) -> None:
    """Refuse a handler module whose name is already taken by Python or the runtime.

    The runtime has imported part of the standard library before the handler
    loads, so a user's ``json.py`` or ``logging.py`` would silently lose to it
    and the error would be a baffling 'handler missing'. Say so instead.
    """
    top = module_name.partition(".")[0]
    loaded = sys.modules.get(top)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    builtin = top in sys.builtin_module_names
    taken = loaded is not None and not (origin and _is_under(origin, task_root))
    if builtin or taken:
        raise RuntimeFault(
            BUILT_IN_MODULE_CONFLICT,
            f"Cannot use built-in module '{top}' as a handler module: rename the file",
        )


def _is_under(path: str, directory: str) -> bool:
    directory = os.path.join(os.path.abspath(directory), "")
    return os.path.abspath(path).startswith(directory)
