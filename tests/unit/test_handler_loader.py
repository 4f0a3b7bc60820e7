"""Loading the handler that _HANDLER names, and every way that can fail."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from pylambda import errors
from pylambda.errors import RuntimeFault
from pylambda.handler_loader import load_handler, parse_handler_name


@pytest.fixture
def code(task_root: Callable[[Mapping[str, str]], Path]) -> Iterator[Callable[[Mapping[str, str]], Path]]:
    """A task root on sys.path, with the modules it added forgotten afterwards."""
    modules_before = set(sys.modules)
    roots: list[str] = []

    def write(files: Mapping[str, str]) -> Path:
        root = task_root(files)
        sys.path.insert(0, str(root))
        roots.append(str(root))
        return root

    yield write
    for root in roots:
        sys.path.remove(root)
    for name in set(sys.modules) - modules_before:
        del sys.modules[name]


def fault_of(spec: str, root: Path) -> RuntimeFault:
    with pytest.raises(RuntimeFault) as caught:
        load_handler(spec, [str(root)])
    return caught.value


def test_loads_function_from_top_level_module(code: Callable[..., Path]) -> None:
    root = code({"app.py": "def handler(event, context):\n    return event\n"})
    assert load_handler("app.handler", [str(root)])(41, None) == 41


def test_loads_function_from_dotted_package(code: Callable[..., Path]) -> None:
    root = code(
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/mod.py": "def fn(event, context):\n    return 'deep'\n",
        }
    )
    assert load_handler("pkg.sub.mod.fn", [str(root)])({}, None) == "deep"


def test_loads_function_from_directory_path(code: Callable[..., Path]) -> None:
    root = code({"src/handlers/orders.py": "def create(event, context):\n    return 'created'\n"})
    assert load_handler("src/handlers/orders.create", [str(root)])({}, None) == "created"


def test_module_top_level_code_runs_once_per_load(code: Callable[..., Path]) -> None:
    root = code(
        {
            "app.py": """
            import counter
            counter.imports += 1
            def handler(event, context):
                return counter.imports
            """,
            "counter.py": "imports = 0\n",
        }
    )
    handler = load_handler("app.handler", [str(root)])
    assert [handler({}, None) for _ in range(3)] == [1, 1, 1]


def test_missing_module_is_import_module_error(code: Callable[..., Path]) -> None:
    fault = fault_of("nothere.handler", code({}))
    assert fault.error_type == errors.IMPORT_MODULE_ERROR
    assert fault.message == "Unable to import module 'nothere': No module named 'nothere'"


def test_missing_dependency_of_the_module_is_import_module_error(code: Callable[..., Path]) -> None:
    fault = fault_of("app.handler", code({"app.py": "import requests_that_is_not_installed\n"}))
    assert fault.error_type == errors.IMPORT_MODULE_ERROR
    assert "No module named 'requests_that_is_not_installed'" in fault.message


def test_syntax_error_names_file_and_line(code: Callable[..., Path]) -> None:
    root = code({"app.py": "def handler(event, context):\n    return (\n\nx = 1 +\n"})
    fault = fault_of("app.handler", root)
    assert fault.error_type == errors.USER_CODE_SYNTAX_ERROR
    assert fault.message.startswith("Syntax error in module 'app': ")
    assert "app.py" in fault.message
    assert f'File "{root / "app.py"}" Line ' in fault.stack_trace[0]  # the managed runtime's layout


def test_missing_function_is_handler_not_found(code: Callable[..., Path]) -> None:
    fault = fault_of("app.handle", code({"app.py": "def handler(event, context):\n    pass\n"}))
    assert fault.error_type == errors.HANDLER_NOT_FOUND
    assert fault.message == "Handler 'handle' missing on module 'app'"


def test_handler_that_is_not_callable_is_handler_not_found(code: Callable[..., Path]) -> None:
    fault = fault_of("app.handler", code({"app.py": "handler = {'not': 'a function'}\n"}))
    assert fault.error_type == errors.HANDLER_NOT_FOUND
    assert "is a dict, not a function" in fault.message


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "app",
        "app.",
        ".handler",
        "../escape.handler",
        "/etc/passwd.handler",
        "dir//app.handler",
        "a..b.handler",
        "app.handler()",
        "app.handler; import os",
        "~/app.handler",
        "app\x00.handler",
    ],
)
def test_malformed_names_are_refused_before_any_import(spec: str, code: Callable[..., Path]) -> None:
    root = code({"app.py": "raise SystemExit('must never be imported')\n"})
    modules_before = set(sys.modules)
    fault = fault_of(spec, root)
    assert fault.error_type == errors.MALFORMED_HANDLER_NAME
    assert set(sys.modules) == modules_before


def test_hyphenated_file_names_are_allowed() -> None:
    assert parse_handler_name("my-func.handler") == ("my-func", "handler")


@pytest.mark.parametrize("spec", ["sys.exit", "json.loads", "logging.info", "pylambda.runtime.main"])
def test_modules_already_taken_by_python_or_the_runtime_are_refused(spec: str, code: Callable[..., Path]) -> None:
    import json
    import logging

    assert json and logging  # loaded, as they are in the runtime before the handler loads
    root = code({"json.py": "def loads(event, context):\n    return 'user json'\n"})
    fault = fault_of(spec, root)
    assert fault.error_type == errors.BUILT_IN_MODULE_CONFLICT


@pytest.mark.parametrize("spec", ["this.handler", "antigravity.handler", "http.server.test"])
def test_standard_library_modules_are_refused_without_being_imported(spec: str, code: Callable[..., Path]) -> None:
    root = code({"app.py": "def handler(event, context):\n    pass\n"})
    top = spec.partition(".")[0]
    already = top in sys.modules
    fault = fault_of(spec, root)
    assert fault.error_type == errors.BUILT_IN_MODULE_CONFLICT
    assert (top in sys.modules) == already


def test_handler_in_a_dependency_layer_directory_is_allowed(code: Callable[..., Path], tmp_path: Path) -> None:
    root = code({"app.py": ""})
    layer = tmp_path / "opt-python"
    layer.mkdir()
    (layer / "shared_handlers.py").write_text("def handler(event, context):\n    return 'from a layer'\n")
    sys.path.append(str(layer))
    try:
        assert load_handler("shared_handlers.handler", [str(root), str(layer)])({}, None) == "from a layer"
    finally:
        sys.path.remove(str(layer))
