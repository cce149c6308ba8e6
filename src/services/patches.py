"""Merge patches (RFC 7396), the one way every resource is changed.

A patch holds the fields a client sent, as sent: a field absent is left alone, a value replaces
the field's, and null removes it where the resource allows that (each service says where). A
field the resource does not have is refused when the patch is made.
"""

from __future__ import annotations

from collections.abc import ItemsView, Mapping
from typing import Any, ClassVar

from taskapi.errors import InvalidFieldError


class MergePatch:
    """The fields of one resource a client asked to change; subclasses name them."""

    noun: ClassVar[str]  # "Tasks", for the refusal of an unknown field
    fields: ClassVar[frozenset[str]]

    def __init__(self, changes: Mapping[str, Any] | None = None, /, **given: Any) -> None:
        self._changes = {**(changes or {}), **given}
        unknown = sorted(self._changes.keys() - self.fields)
        if unknown:
            raise InvalidFieldError(
                f"{self.noun} have no field {unknown[0]} to change.", field=unknown[0]
            )

    def get(self, name: str) -> Any:
        """The value sent for `name`; None when it was not sent (or sent as null)."""
        return self._changes.get(name)

    def items(self) -> ItemsView[str, Any]:
        return self._changes.items()
