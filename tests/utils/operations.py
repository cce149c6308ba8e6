"""The spec's operationIds, looked up by method and path, so tests name operations as the
contract does, whatever it calls them."""

from __future__ import annotations

from taskapi.spec import load_spec


def operation_id(method: str, path: str) -> str:
    """`operation_id("GET", "/users/{user_id}")`: the operationId of that operation."""
    found: str = load_spec()["paths"][path][method.lower()]["operationId"]
    return found
