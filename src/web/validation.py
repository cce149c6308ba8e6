"""Request validation against the spec that names every failing field, in plain words.

Connexion's stock validators stop at the first error and return jsonschema's raw text; these
drop-in replacements (installed through Connexion's `validator_map`) collect every error, point
at each one with a JSON pointer, and build each schema's validator once instead of per request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from typing import Any

import orjson
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.validators import AbstractRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator
from jsonschema import ValidationError as SchemaError
from starlette.types import Scope

from taskapi.web.problems import FieldError, MalformedRequest, RequestValidationFailed

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


def describe(error: SchemaError) -> str:
    """What the value must be, said the way a person would say it."""
    rule, limit = error.validator, error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    match rule:
        case "type":
            types = [limit] if isinstance(limit, str) else list(limit)
            return "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        case "minLength":
            return f"must be at least {limit} character{'s' if limit != 1 else ''} long"
        case "maxLength":
            return f"must be at most {limit} characters long"
        case "minimum":
            return f"must be greater than {limit}" if schema.get("exclusiveMinimum") else (
                f"must be at least {limit}"
            )
        case "maximum":
            return f"must be less than {limit}" if schema.get("exclusiveMaximum") else (
                f"must be at most {limit}"
            )
        case "enum":
            return "must be one of: " + ", ".join(str(v) for v in limit)
        case "pattern":
            # The spec may say in words what its pattern means (`x-pattern-message`).
            return str(schema.get("x-pattern-message") or f"must match the pattern {limit}")
        case "format":
            return _FORMAT_MESSAGES.get(limit, f"must be a valid {limit}")
        case "minItems":
            return f"must have at least {limit} item{'s' if limit != 1 else ''}"
        case "maxItems":
            return f"must have at most {limit} items"
        case "uniqueItems":
            return "must not contain the same item twice"
        case _:
            return str(error.message)


def pointer(path: Iterable[Any]) -> str:
    """An RFC 6901 JSON pointer into the request, such as `/body/tags/2` or `/query/limit`."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def field_errors(
    validator: Draft4Validator, value: Any, prefix: list[str]
) -> Iterator[FieldError]:
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
    every length or pattern rule a value of the wrong type trivially breaks."""
    first: dict[str, FieldError] = {}
    for error in errors:
        first.setdefault(error.pointer, error)
    return list(first.values())


class _CompiledSchemas:
    """One validator per schema object, built on first use; the spec's schemas live as long as
    the app, so their identity is a safe key."""

    def __init__(self, validator_class: type[Draft4Validator]) -> None:
        self._validator_class = validator_class
        self._validators: dict[int, tuple[Mapping[str, Any], Draft4Validator]] = {}

    def __call__(self, schema: Mapping[str, Any]) -> Draft4Validator:
        cached = self._validators.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        validator = self._validator_class(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        self._validators[id(schema)] = (schema, validator)
        return validator


_parameter_validators = _CompiledSchemas(Draft4Validator)
_body_validators = _CompiledSchemas(Draft4RequestValidator)


class ContractParameterValidator(ParameterValidator):  # type: ignore[misc]
    """Validates path, query and header parameters, reporting all of them at once."""

    _SOURCES = (
        ("path", lambda request, name: request.path_params.get(name.replace("-", "_"))),
        ("query", lambda request, name: request.query_params.get(name)),
        ("header", lambda request, name: request.headers.get(name)),
        ("cookie", lambda request, name: request.cookies.get(name)),
    )

    def validate_request(self, request: ConnexionRequest) -> None:
        errors: list[FieldError] = []
        if self.strict_validation:
            unknown = self.validate_query_parameter_list(
                request, security_params=self.security_query_params
            )
            errors.extend(
                FieldError(pointer(["query", name]), "is not a known parameter")
                for name in sorted(unknown)
            )
        for location, read in self._SOURCES:
            for param in self.parameters.get(location, []):
                errors.extend(self._check(location, param, read(request, param["name"])))
        if errors:
            raise RequestValidationFailed(one_per_field(errors))

    @staticmethod
    def _check(location: str, param: Mapping[str, Any], value: Any) -> Iterator[FieldError]:
        prefix = [location, param["name"]]
        if value is None:
            if param.get("required"):
                yield FieldError(pointer(prefix), "is required")
            return
        yield from field_errors(_parameter_validators(param.get("schema", param)), value, prefix)


class ContractJSONBodyValidator(AbstractRequestBodyValidator):  # type: ignore[misc]
    """Parses JSON bodies strictly (UTF-8, no lone surrogates, no NaN) and reports every
    failing field."""

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        raw = b"".join([chunk async for chunk in stream])
        if not raw.strip():
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedRequest(f"The body is not valid JSON in UTF-8: {exc}.") from None

    def _validate(self, body: Any) -> None:
        if body is None:
            raise RequestValidationFailed([FieldError("/body", "is required")])
        errors = one_per_field(field_errors(_body_validators(self._schema), body, ["body"]))
        if errors:
            raise RequestValidationFailed(errors)


VALIDATOR_MAP = {
    "parameter": ContractParameterValidator,
    "body": MediaTypeDict({"*/*json": ContractJSONBodyValidator}),
}
