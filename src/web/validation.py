"""Request validation against the spec that names every failing field, in plain words.

Connexion's stock validators stop at the first error and return jsonschema's raw text; these
drop-in replacements (installed through Connexion's `validator_map`) collect every error, point
at each one with a JSON pointer, and build each schema's validator once instead of per request.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import orjson
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import AbstractRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, validators
from jsonschema import ValidationError as SchemaError
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.types import Message, Receive, Scope

from taskapi.web.formats import FORMAT_CHECKER
from taskapi.web.problems import (
    MAX_FIELD_ERRORS,
    FieldError,
    MalformedRequestError,
    RequestValidationError,
)

# Where what validation parsed waits in the ASGI scope for the handler, so that it is not
# parsed again (taskapi.web.planned): the JSON body, and the path and query parameters as
# coerced and checked (CheckedParameters).
PARSED_BODY = "taskapi.parsed_body"
CHECKED_PARAMETERS = "taskapi.checked_parameters"
# Bodies larger than this are parsed and validated off the event loop (below it, parsing and
# validating cost less than the hop to a thread).
ON_A_THREAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CheckedParameters:
    """The values only, not the request they came from: a request holds the scope, so the
    scope holding the request would make every request's objects a reference cycle, left for
    the garbage collector (whose pauses stall every request in flight) instead of freed at once."""

    path_params: dict[str, Any]
    query_params: dict[str, Any]


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


_FORMAT_MESSAGES = {
    "email": "must be an email address such as ada@example.com",
    "uuid": "must be a UUID",
    "date": "must be a date such as 2026-12-31",
    "date-time": "must be a date and time such as 2026-12-31T23:59:59Z",
}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


# One sentence per JSON Schema keyword: given the keyword's value and its schema.
_RULES: dict[str, Callable[[Any, Mapping[str, Any]], str]] = {
    "type": lambda types, _: (
        "must be "
        + " or ".join(_TYPE_NAMES.get(t, t) for t in ([types] if isinstance(types, str) else types))
    ),
    "minLength": lambda n, _: f"must be at least {_plural(n, 'character')} long",
    "maxLength": lambda n, _: f"must be at most {_plural(n, 'character')} long",
    "minimum": lambda n, schema: (
        f"must be greater than {n}" if schema.get("exclusiveMinimum") else f"must be at least {n}"
    ),
    "maximum": lambda n, schema: (
        f"must be less than {n}" if schema.get("exclusiveMaximum") else f"must be at most {n}"
    ),
    "enum": lambda values, _: "must be one of: " + ", ".join(str(v) for v in values),
    # The spec may say in words what its pattern means (`x-pattern-message`).
    "pattern": lambda pattern, schema: str(
        schema.get("x-pattern-message") or f"must match the pattern {pattern}"
    ),
    "format": lambda name, _: _FORMAT_MESSAGES.get(name, f"must be a valid {name}"),
    "minItems": lambda n, _: f"must have at least {_plural(n, 'item')}",
    "maxItems": lambda n, _: f"must have at most {_plural(n, 'item')}",
    "uniqueItems": lambda _n, _: "must not contain the same item twice",
}


def describe(error: SchemaError) -> str:
    """What the value must be, said the way a person would say it."""
    rule = _RULES.get(str(error.validator))
    if rule is None:
        return str(error.message)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    return rule(error.validator_value, schema)


def pointer(path: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer into the request, such as `/body/tags/2` or `/query/limit`."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def field_errors(validator: Draft4Validator, value: Any, prefix: list[str]) -> Iterator[FieldError]:
    """Every way `value` breaks the schema, one error per field, missing and unknown ones too.

    `prefix` locates the value in the request: `["body"]`, or `["query", "limit"]`.
    """
    for error in validator.iter_errors(value):
        path = [*prefix, *error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            # jsonschema reports the object; point at each missing member instead.
            for name in error.validator_value:
                if name not in error.instance:
                    yield FieldError(pointer([*path, name]), "is required")
        elif error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = set(error.schema.get("properties", {}))
            for name in error.instance:
                if name not in known:
                    yield FieldError(pointer([*path, name]), "is not a known field")
        else:
            yield FieldError(pointer(path), describe(error))


def one_per_field(errors: Iterable[FieldError]) -> list[FieldError]:
    """The first (most basic) complaint about each field: `must be a string` rather than also
    every length or pattern rule a value of the wrong type trivially breaks.

    Reading stops one field past what a problem lists (MAX_FIELD_ERRORS), so the work done on
    a body of many bad fields ends there too: `errors` is consumed lazily.
    """
    first: dict[str, FieldError] = {}
    for error in errors:
        first.setdefault(error.pointer, error)
        if len(first) > MAX_FIELD_ERRORS:
            break
    return list(first.values())


KeywordCheck = Callable[[Any, Any, Any, Mapping[str, Any]], Iterable[SchemaError] | None]


def _unless_too_big(
    check: KeywordCheck, limit: str, kind: type[str] | type[list[Any]]
) -> KeywordCheck:
    """`check`, skipped for a value of `kind` already longer than the schema's `limit`: the
    size error says what is wrong, and checking the contents of a value larger than the spec
    allows would cost what the spec does not bound (`uniqueItems` over objects compares every
    pair; a pattern runs over every character)."""

    def sized_first(
        validator: Any, value: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterable[SchemaError] | None:
        most = schema.get(limit)
        if isinstance(instance, kind) and most is not None and len(instance) > most:
            return ()
        return check(validator, value, instance, schema)

    return sized_first


def _end_of_input(pattern: str) -> str:
    """`pattern` with each `$` anchor (outside a character class, unescaped) written `\\Z`.

    The spec's patterns are ECMA-262's, where `$` matches only at the very end of the input;
    Python's `$` also matches before a final newline, which would let `"Ada\\n"` through
    `^[^\\u0000-\\u001f]*$`."""
    written: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            written.append(r"\Z")
            continue
        written.append(char)
    return "".join(written)


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_end_of_input(pattern))


def _ecma_pattern(
    validator: Any,
    pattern: str,
    instance: Any,
    schema: Mapping[str, Any],  # noqa: ARG001 - the keyword-check signature
) -> Iterator[SchemaError]:
    """jsonschema's `pattern` keyword, with `$` as ECMA-262 means it."""
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield SchemaError(f"{instance!r} does not match {pattern!r}")


def _unknown_fields(check: KeywordCheck) -> KeywordCheck:
    """`additionalProperties: false` without jsonschema's message, which sorts and quotes
    every unknown name: `field_errors` names them one by one, and stops at the cap."""

    def unknown_fields(
        validator: Any, value: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterable[SchemaError] | None:
        if value is not False or "patternProperties" in schema or not isinstance(instance, dict):
            return check(validator, value, instance, schema)
        known = schema.get("properties", {})
        if any(name not in known for name in instance):
            return (SchemaError("unknown fields"),)
        return ()

    return unknown_fields


def sizes_first(validator_class: type[Draft4Validator]) -> type[Draft4Validator]:
    """`validator_class` with checks of contents skipped once a size check has failed, unknown
    fields found without naming them all at once, and `pattern`'s `$` as ECMA-262 means it."""
    checks = validator_class.VALIDATORS
    extended: type[Draft4Validator] = validators.extend(  # type: ignore[no-untyped-call]
        validator_class,
        {
            "pattern": _unless_too_big(_ecma_pattern, "maxLength", str),
            "format": _unless_too_big(checks["format"], "maxLength", str),
            "items": _unless_too_big(checks["items"], "maxItems", list),
            "uniqueItems": _unless_too_big(checks["uniqueItems"], "maxItems", list),
            "additionalProperties": _unknown_fields(checks["additionalProperties"]),
        },
    )
    return extended


class CompiledSchema:
    """One schema's checks: a compiled validator (jsonschema-rs) answers "valid" fast, and
    jsonschema, the reference, says what is wrong.

    The compiled validator only ever short-cuts acceptance. Whatever it refuses goes to
    jsonschema, whose verdict stands: a value it refuses wrongly (it knows nothing of OpenAPI's
    `nullable`) costs time, not a wrong answer. It is given the very format checks jsonschema
    uses, and a test holds the two to the same verdicts over every schema of the spec
    (tests/test_validation_parity.py).
    """

    def __init__(self, schema: Mapping[str, Any], validator_class: type[Draft4Validator]) -> None:
        self.schema = schema
        self.reference = validator_class(schema, format_checker=FORMAT_CHECKER)
        self.compiled = _compile(schema)

    def accepts_fast(self, value: Any) -> bool:
        """True when the compiled validator accepts `value` (False says nothing yet)."""
        if self.compiled is None:
            return False
        try:
            return bool(self.compiled.is_valid(value))
        except (ValueError, TypeError, OverflowError):  # what it cannot represent
            return False

    def errors(self, value: Any, prefix: list[str]) -> Iterator[FieldError]:
        if not self.accepts_fast(value):
            yield from field_errors(self.reference, value, prefix)


# jsonschema-rs runs these Python checks itself, so both validators agree on every format.
_FORMATS: dict[str, Callable[..., bool]] = {
    name: functools.partial(FORMAT_CHECKER.conforms, format=name)
    for name in FORMAT_CHECKER.checkers
}


def _compile(schema: Mapping[str, Any]) -> jsonschema_rs.Draft4Validator | None:
    try:
        return jsonschema_rs.Draft4Validator(
            dict(schema), formats=_FORMATS, validate_formats=True, ignore_unknown_formats=True
        )
    except (ValueError, TypeError):  # a schema it cannot compile is checked by jsonschema alone
        return None


class _CompiledSchemas:
    """One CompiledSchema per schema object, built on first use; the spec's schemas live as
    long as the app, so their identity is a safe key."""

    def __init__(self, validator_class: type[Draft4Validator]) -> None:
        self._validator_class = validator_class
        self._compiled: dict[int, CompiledSchema] = {}

    def __call__(self, schema: Mapping[str, Any]) -> CompiledSchema:
        cached = self._compiled.get(id(schema))
        if cached is not None and cached.schema is schema:
            return cached
        compiled = CompiledSchema(schema, self._validator_class)
        self._compiled[id(schema)] = compiled
        return compiled


parameter_schemas = _CompiledSchemas(sizes_first(Draft4Validator))
body_schemas = _CompiledSchemas(sizes_first(Draft4RequestValidator))


class ContractParameterValidator(ParameterValidator):  # type: ignore[misc]
    """Validates path, query and header parameters, reporting all of them at once.

    Values are read straight from the ASGI scope, each location only when the operation
    declares a parameter there (or, for the query, when one was sent): no request object."""

    _LOCATIONS = ("path", "query", "header", "cookie")

    def validate(self, scope: Scope) -> None:
        path_params = self.uri_parser.resolve_path(scope.get("path_params") or {})
        query_string = scope.get("query_string")
        sent = QueryParams(query_string) if query_string else None
        query_params = self.uri_parser.resolve_query(
            {name: sent.getlist(name) for name in sent} if sent is not None else {}
        )
        sources = {"path": path_params, "query": query_params}
        if self.parameters.get("header"):
            sources["header"] = Headers(scope=scope)
        if self.parameters.get("cookie"):
            sources["cookie"] = Request(scope).cookies
        self._validate_values(sources)
        scope.setdefault("extensions", {})[CHECKED_PARAMETERS] = CheckedParameters(
            path_params=path_params, query_params=query_params
        )

    def _validate_values(self, sources: Mapping[str, Mapping[str, Any]]) -> None:
        errors: list[FieldError] = []
        if self.strict_validation:
            known = {p["name"] for p in self.parameters.get("query", [])}
            unknown = set(sources["query"]) - known - self.security_query_params
            errors.extend(
                FieldError(pointer(["query", name]), "is not a known parameter")
                for name in sorted(unknown)
            )
        for location in self._LOCATIONS:
            values = sources.get(location, {})
            for param in self.parameters.get(location, []):
                name = param["name"]
                value = values.get(name.replace("-", "_") if location == "path" else name)
                errors.extend(self._check(location, param, value))
        if errors:
            raise RequestValidationError(one_per_field(errors))

    @staticmethod
    def _check(location: str, param: Mapping[str, Any], value: Any) -> Iterator[FieldError]:
        prefix = [location, param["name"]]
        if value is None:
            if param.get("required"):
                yield FieldError(pointer(prefix), "is required")
            return
        yield from parameter_schemas(param.get("schema", param)).errors(value, prefix)


class ContractJSONBodyValidator(AbstractRequestBodyValidator):  # type: ignore[misc]
    """Parses JSON bodies strictly (UTF-8, no lone surrogates, no NaN) and reports every
    failing field."""

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        """Read, parse and validate the body, then replay it to the handler.

        Unlike Connexion's own, this reads bodies sent without Content-Length (chunked) instead of
        taking them for missing, and reports a missing body as a field error.
        """
        messages: list[Message] = []

        async def stream() -> AsyncGenerator[bytes, None]:
            more_body = True
            while more_body:
                message = await receive()
                messages.append(message)
                more_body = message.get("more_body", False)
                yield message.get("body", b"")

        raw = b"".join([chunk async for chunk in stream()])
        # A large body is parsed and checked on a thread, so that the event loop keeps serving
        # other requests meanwhile, whatever MAX_BODY_BYTES allows.
        if len(raw) > ON_A_THREAD_BYTES:
            body = await asyncio.to_thread(self._checked, raw)
        else:
            body = self._checked(raw)
        # The handler receives this very value (taskapi.web.planned), not a second parse.
        scope.setdefault("extensions", {})[PARSED_BODY] = body
        return self._insert_messages(receive, messages=messages), scope

    def _checked(self, raw: bytes) -> Any:
        """The body parsed; MalformedRequestError or RequestValidationError if it is not one
        the operation accepts."""
        body = self._parse_json(raw)
        if body is not None or self._required:
            self._validate(body)
        return body

    @staticmethod
    def _parse_json(raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedRequestError(f"The body is not valid JSON in UTF-8: {exc}.") from None

    def _validate(self, body: Any) -> None:
        if body is None:
            raise RequestValidationError([FieldError("/body", "is required")])
        errors = one_per_field(body_schemas(self._schema).errors(body, ["body"]))
        if errors:
            raise RequestValidationError(errors)


VALIDATOR_MAP = {
    "parameter": ContractParameterValidator,
    "body": MediaTypeDict({"*/*json": ContractJSONBodyValidator}),
}
