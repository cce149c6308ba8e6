"""The layers, checked mechanically: handlers -> services -> models, each kept to its job.

Every module under src/ is parsed (not imported), so a rule holds for code paths no test runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskapi

SRC = Path(taskapi.__file__).resolve().parent
PACKAGE = taskapi.__name__


def modules(layer: str) -> dict[str, ast.Module]:
    """The parsed modules of one layer (a subpackage of taskapi), keyed by dotted name."""
    found = {}
    for path in sorted((SRC / layer).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join((PACKAGE, *parts)).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return found


def imported_names(module_name: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every module or name the module imports, as absolute dotted names with line numbers;
    `from a.b import c` yields both `a.b` and `a.b.c`, relative imports are resolved."""
    package = module_name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def imports_of(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module}:{line} imports {name}"
        for module, tree in modules(layer).items()
        for line, name in imported_names(module, tree)
        if any(is_within(name, package) for package in forbidden)
    ]


def calls(layer: str, function_name: str) -> list[str]:
    """Every call of `function_name(...)` or `anything.function_name(...)` in the layer."""
    return [
        f"{module}:{node.lineno}"
        for module, tree in modules(layer).items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == function_name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == function_name)
        )
    ]


@pytest.mark.parametrize("layer", ["handlers", "services", "models", "web"])
def test_every_layer_is_found(layer: str) -> None:
    # Guards the rules below against passing vacuously after a move.
    assert modules(layer)


def test_services_know_nothing_of_http() -> None:
    forbidden = ("connexion", "starlette", f"{PACKAGE}.handlers", f"{PACKAGE}.web")

    assert imports_of("services", forbidden) == []


def test_services_never_commit() -> None:
    # The request owns the transaction (taskapi.web); services flush when they need ids.
    assert calls("services", "commit") == []


def test_models_import_nothing_from_the_layers_above() -> None:
    forbidden = (f"{PACKAGE}.services", f"{PACKAGE}.handlers", f"{PACKAGE}.web")

    assert imports_of("models", forbidden) == []


def test_handlers_use_sqlalchemy_only_for_the_session_type() -> None:
    allowed = {"sqlalchemy.orm", "sqlalchemy.orm.Session"}
    found = [
        f"{module}:{line} imports {name}"
        for module, tree in modules("handlers").items()
        for line, name in imported_names(module, tree)
        if is_within(name, "sqlalchemy") and name not in allowed
    ]

    assert found == []


def test_handlers_build_no_queries() -> None:
    assert calls("handlers", "select") == []


def test_import_finder_resolves_relative_and_from_imports() -> None:
    tree = ast.parse("from . import users\nfrom ..web import problems\nimport starlette.responses")

    found = {name for _, name in imported_names(f"{PACKAGE}.services.tasks", tree)}

    assert {
        f"{PACKAGE}.services.users",
        f"{PACKAGE}.web",
        f"{PACKAGE}.web.problems",
        "starlette.responses",
    } <= found
