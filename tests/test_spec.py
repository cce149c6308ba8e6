"""The contract itself: a valid OpenAPI 3.0 document whose operations and handlers match one to one,
and whose errors and request bodies follow the house rules.

Handlers are told apart from helpers by one rule: a handler is a public function of a module in
`taskapi.handlers` that an operationId names; the only other public functions allowed there shape
replies and are named `*_resource` (such as `users.user_resource`).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from connexion import AsyncApp
from connexion.exceptions import ResolverError
from connexion.utils import get_function_from_name
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from starlette.testclient import TestClient

from taskapi import handlers
from taskapi.spec import load_spec
from taskapi.web.dependencies import HandlerResolver
from taskapi.web.routes import HTTP_METHODS

SPEC = load_spec()
REPO = Path(__file__).resolve().parent.parent
PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
RESOURCE_SHAPER_SUFFIX = "_resource"


def resolve(node: Any) -> Any:
    """`node` with any local `$ref` followed (the spec has no remote references)."""
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _operations() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, path_item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method in path_item:
                yield f"{method.upper()} {path}", path_item[method]


OPERATIONS = dict(_operations())


RESOLVER = HandlerResolver(SPEC, function_resolver=get_function_from_name)


def operation_id_target(operation: Mapping[str, Any]) -> str:
    """The dotted name the app's resolver imports for an operation."""
    return RESOLVER.handler_name(operation["operationId"])


def handler_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{handlers.__name__}.{info.name}")
        for info in pkgutil.iter_modules(handlers.__path__)
    ]


def public_functions(module: ModuleType) -> Iterator[str]:
    """The dotted names of public functions defined in `module`, not imported into it."""
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if not name.startswith("_") and function.__module__ == module.__name__:
            yield f"{module.__name__}.{name}"


def test_spec_is_a_valid_openapi_3_0_document() -> None:
    validate(SPEC, cls=OpenAPIV30SpecValidator)


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_operation_id_resolves_to_a_function_defined_in_the_handlers_package(
    operation: dict[str, Any],
) -> None:
    target = operation_id_target(operation)
    function = RESOLVER.resolve_function_from_operation_id(target)

    assert inspect.isfunction(function), f"{target} is not a function"
    assert f"{function.__module__}.{function.__name__}" == target, (
        f"{target} is imported from {function.__module__}; define it in its handler module"
    )


def test_operation_ids_are_unique() -> None:
    operation_ids = [operation["operationId"] for operation in OPERATIONS.values()]

    assert sorted(operation_ids) == sorted(set(operation_ids))


def test_every_public_handler_function_is_named_by_an_operation_id() -> None:
    targets = {operation_id_target(operation) for operation in OPERATIONS.values()}
    public = {name for module in handler_modules() for name in public_functions(module)}

    unrouted = {name for name in public - targets if not name.endswith(RESOURCE_SHAPER_SUFFIX)}
    assert not unrouted, (
        "public functions in taskapi.handlers that no operationId names; route them, make them "
        f"private, or name reply shapers *{RESOURCE_SHAPER_SUFFIX}: {sorted(unrouted)}"
    )


def test_no_operation_routes_to_a_resource_shaper() -> None:
    shapers = sorted(
        target
        for operation in OPERATIONS.values()
        if (target := operation_id_target(operation)).endswith(RESOURCE_SHAPER_SUFFIX)
    )

    assert not shapers


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_operation_documents_400_and_500(operation: dict[str, Any]) -> None:
    assert {"400", "500"} <= set(operation["responses"])


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_every_error_response_is_a_problem(operation: dict[str, Any]) -> None:
    for status, response in operation["responses"].items():
        if status[0] in "23":  # successes, and redirections such as 304 Not Modified
            continue
        content = resolve(response).get("content", {})

        assert list(content) == [PROBLEM_JSON], f"{status} must be {PROBLEM_JSON} only"
        assert content[PROBLEM_JSON].get("schema") == PROBLEM_SCHEMA, (
            f"{status} must use {PROBLEM_SCHEMA['$ref']}"
        )


def object_schemas(schema: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every object schema inside `schema` (itself, properties, items and compositions), each
    with where it sits."""
    schema = resolve(schema)
    if not isinstance(schema, Mapping):
        return
    if schema.get("type") == "object" or "properties" in schema:
        yield where, schema
    for name, member in schema.get("properties", {}).items():
        yield from object_schemas(member, f"{where}/properties/{name}")
    if "items" in schema:
        yield from object_schemas(schema["items"], f"{where}/items")
    for keyword in ("allOf", "anyOf", "oneOf"):
        for index, member in enumerate(schema.get(keyword, [])):
            yield from object_schemas(member, f"{where}/{keyword}/{index}")


def request_body_schemas() -> Iterator[tuple[str, Any]]:
    for label, operation in OPERATIONS.items():
        if "requestBody" in operation:
            for media_type, body in resolve(operation["requestBody"])["content"].items():
                yield f"{label} {media_type}", body.get("schema", {})


REQUEST_BODIES = dict(request_body_schemas())


@pytest.mark.parametrize("schema", REQUEST_BODIES.values(), ids=REQUEST_BODIES.keys())
def test_request_body_objects_forbid_unknown_fields(schema: Any) -> None:
    # An object composed with allOf cannot forbid unknown fields in Draft 4 (each branch would
    # reject the others' fields), so this also keeps request bodies flat.
    lax = [
        where
        for where, found in object_schemas(schema, "#")
        if found.get("additionalProperties") is not False
    ]

    assert not lax, f"object schemas without additionalProperties: false at {lax}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"operationId": "list_tasks_nobody_wrote"}, "list_tasks_nobody_wrote"),
        ({"tags": []}, "no tag"),
    ],
    ids=["no-such-function", "no-tag"],
)
def test_an_operation_the_resolver_cannot_route_stops_the_app_from_starting(
    change: dict[str, Any], message: str
) -> None:
    spec = load_spec()
    spec["paths"]["/tasks"]["get"].update(change)

    app = AsyncApp(__name__)
    app.add_api(spec, resolver=HandlerResolver(spec, get_function_from_name))

    with pytest.raises(ResolverError, match=message), TestClient(app):
        pass  # starting the app builds its routes


def example_passwords(node: Any) -> Iterator[str]:
    """Every password or current_password given in an example anywhere in the spec."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in {"password", "current_password"} and isinstance(value, str):
                yield value
            else:
                yield from example_passwords(value)
    elif isinstance(node, list):
        for item in node:
            yield from example_passwords(item)


def test_example_passwords_are_none_a_guide_tells_users_to_use() -> None:
    # A tool replaying the examples (schemathesis's examples phase, Swagger UI) would otherwise
    # log in as, or change the password of, anyone who followed the README.
    guides = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "\n".join(path.read_text(encoding="utf-8") for path in guides)
    passwords = set(example_passwords(SPEC["paths"]))

    assert passwords
    assert not {password for password in passwords if password in text}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_every_response_body_and_header_has_an_example(operation: dict[str, Any]) -> None:
    missing = []
    for status, declared in operation["responses"].items():
        response = resolve(declared)
        for media_type, content in response.get("content", {}).items():
            if not {"example", "examples"} & set(content):
                missing.append(f"{status} {media_type}")
        for name, header in response.get("headers", {}).items():
            if not {"example", "examples"} & set(resolve(header)):
                missing.append(f"{status} header {name}")

    assert not missing
