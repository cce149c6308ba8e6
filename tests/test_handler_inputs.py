"""One way to reach what a handler needs: a keyword parameter, named once.

A handler's parameters are the spec's parameters of its operation (path, query, `body`) or
names `taskapi.web.dependencies.PROVIDERS` supplies. Neither handlers nor services reach for
the request themselves (`connexion.request`, the ASGI scope and its state) or keep process-wide
configuration in module globals.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re

import pytest

from taskapi import handlers
from taskapi.spec import load_spec
from taskapi.web.dependencies import PROVIDERS
from tests.test_layering import imported_names, modules

SPEC = load_spec()
# The request, reached around the parameters: Connexion's globals, or the ASGI scope's state.
_REACHING_FOR_THE_REQUEST = re.compile(
    r"\bscope\s*\[|\bscope\.get\(|\.scope\b|\[\s*[\"']state[\"']\s*\]"
    r"|\brequest\.(headers|url|scope|state|path|query_params)\b"
)


def spec_parameter_names() -> set[str]:
    """Every path and query parameter's name, of operations and of path items, and `body`."""
    declared = [
        parameter
        for path_item in SPEC["paths"].values()
        for member in path_item.values()
        for parameter in (member if isinstance(member, list) else member.get("parameters", []))
    ]
    resolved = (
        SPEC["components"]["parameters"][p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
        for p in declared
    )
    return {"body"} | {p["name"] for p in resolved if p["in"] in ("path", "query")}


def handler_functions() -> dict[str, inspect.Signature]:
    found = {}
    for module_info in pkgutil.iter_modules(handlers.__path__):
        module = importlib.import_module(f"{handlers.__name__}.{module_info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                found[f"{module_info.name}.{name}"] = inspect.signature(function)
    return found


HANDLERS = handler_functions()


@pytest.mark.parametrize("handler", HANDLERS)
def test_handler_parameters_are_spec_parameters_or_provided(handler: str) -> None:
    known = spec_parameter_names() | set(PROVIDERS)
    if handler.endswith("_resource"):
        pytest.skip("a resource shaper, not a handler")

    unknown = set(HANDLERS[handler].parameters) - known

    assert not unknown, f"{handler} asks for {sorted(unknown)}: add them to PROVIDERS or the spec"


def test_every_provided_name_is_asked_for_by_some_handler() -> None:
    asked = {name for signature in HANDLERS.values() for name in signature.parameters}

    assert set(PROVIDERS) <= asked


@pytest.mark.parametrize("layer", ["handlers", "services"])
def test_layer_never_reaches_for_the_request_or_a_global(layer: str) -> None:
    reaching = []
    for module, tree in modules(layer).items():
        reaching += [
            f"{module}:{line} imports {name}"
            for line, name in imported_names(module, tree)
            if name == "connexion" or name.startswith(("connexion.", "starlette.requests"))
        ]
        reaching += [
            f"{module}:{node.lineno} declares a global"
            for node in ast.walk(tree)
            if isinstance(node, ast.Global)
        ]
        source = ast.unparse(tree)
        reaching += [
            f"{module} reads {m.group()!r}" for m in _REACHING_FOR_THE_REQUEST.finditer(source)
        ]

    assert not reaching
