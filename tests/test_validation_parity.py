"""The compiled validator may only ever speed up an acceptance jsonschema would give too.

`taskapi.web.validation.CompiledSchema` lets jsonschema-rs accept a value without asking
jsonschema. These tests hold that shortcut to the reference over every request schema of the
spec: whatever jsonschema-rs accepts, jsonschema accepts; every schema compiles (or the speed
is silently gone); and the spec's own examples take the fast path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from connexion.json_schema import resolve_refs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskapi.spec import load_spec
from taskapi.web.validation import CompiledSchema, body_schemas, parameter_schemas

SPEC = resolve_refs(load_spec())


def request_schemas() -> Iterator[tuple[str, CompiledSchema]]:
    """(where, compiled schema) for every parameter and JSON request body in the spec."""
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, Mapping) or "responses" not in operation:
                continue
            for param in operation.get("parameters", []):
                where = f"{method.upper()} {path} {param['in']} {param['name']}"
                yield where, parameter_schemas(param["schema"])
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield (
                    f"{method.upper()} {path} body",
                    body_schemas(content["application/json"]["schema"]),
                )


SCHEMAS = dict(request_schemas())

# Strings that sit on the edges the two engines could disagree about: formats, anchors and
# newlines, control characters, astral code points and lengths.
EDGE_STRINGS = [
    "",
    " ",
    "a\n",
    "\n",
    "x\x00y",
    "\x7f",
    "ada@example.com",
    "ada@example.com\n",
    "ada@@example.com",
    "ada@[127.0.0.1]",
    "ada@localhost",
    "2026-12-31",
    "2026-02-30",
    "2026-12-31T23:59:59Z",
    "2026-12-31\n",
    "019412d4-5b6c-7d8e-9f00-112233445566",
    "-created_at",
    "created_at",
    "todo",
    "high",
    "bench",
    "😀" * 3,
    "é" * 201,
    "abc.DEF_ghi-0",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_STRINGS),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)


def values_for(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values near what `schema` describes (its enums, bounds, properties), mixed with any
    JSON at all, so that both valid and subtly invalid values come up."""
    options: list[st.SearchStrategy[Any]] = [json_values]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    kind = schema.get("type")
    if kind == "string":
        options.append(st.sampled_from(EDGE_STRINGS))
        options.append(st.text(min_size=0, max_size=schema.get("maxLength", 40) + 2))
    elif kind == "integer":
        low, high = schema.get("minimum", -100), schema.get("maximum", 100)
        options.append(st.integers(min_value=low - 2, max_value=min(high, low + 1000) + 2))
        options.append(st.sampled_from([low, high, high + 1, float(low)]))
    elif kind == "array":
        items = values_for(schema.get("items", {}))
        options.append(st.lists(items, max_size=schema.get("maxItems", 5) + 2))
    elif kind == "object":
        properties = {name: values_for(sub) for name, sub in schema.get("properties", {}).items()}
        required = [name for name in schema.get("required", []) if name in properties]
        options.append(
            st.fixed_dictionaries(
                {name: properties[name] for name in required},
                optional={
                    **{n: s for n, s in properties.items() if n not in required},
                    "unknown_field": json_scalars,
                },
            )
        )
    return st.one_of(options)


def reference_accepts(compiled: CompiledSchema, value: Any) -> bool:
    return next(compiled.reference.iter_errors(value), None) is None


@pytest.mark.parametrize("where", sorted(SCHEMAS))
def test_every_request_schema_compiles(where: str) -> None:
    assert SCHEMAS[where].compiled is not None


@pytest.mark.parametrize("where", sorted(SCHEMAS))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_compiled_validator_accepts_nothing_jsonschema_refuses(
    where: str, data: st.DataObject
) -> None:
    compiled = SCHEMAS[where]
    value = data.draw(values_for(compiled.schema))
    if compiled.accepts_fast(value):
        assert reference_accepts(compiled, value), f"{where}: {value!r}"


def spec_examples() -> Iterator[tuple[str, Any]]:
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, Mapping):
                continue
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media is None:
                continue
            for name, example in media.get("examples", {}).items():
                yield f"{method.upper()} {path} {name}", example["value"]
            if "example" in media:
                yield f"{method.upper()} {path}", media["example"]


EXAMPLES = dict(spec_examples())


@pytest.mark.parametrize("where", sorted(EXAMPLES))
def test_spec_examples_take_the_fast_path(where: str) -> None:
    schema_key = " ".join(where.split()[:2]) + " body"
    compiled = SCHEMAS[schema_key]
    example = EXAMPLES[where]
    assert reference_accepts(compiled, example)
    assert compiled.accepts_fast(example)
