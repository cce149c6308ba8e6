"""Keyset (cursor) pagination, for any table: slices that stay exact while rows come and go.

A slice ends at the sort-key values of its last row, and the next slice is the rows strictly
after those values in the same order. Unlike OFFSET, rows inserted or deleted between two
requests can neither repeat nor skip a row, and the database seeks straight to the slice's start
in the index instead of counting its way there.

The cursor given to clients is those values as JSON in base64url, followed by an HMAC-SHA256 of
them under a key derived from the secret and the listing's scope (owner, filters, sort). An
altered cursor, or one issued for another listing, fails the check and is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, false, or_, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter, KeyedColumnElement

from taskapi.errors import InvalidCursorError
from taskapi.statements import rows

# Covariant: a slice of rows is a slice of any shape those rows have (`tasks.TaskView`).
Item_co = TypeVar("Item_co", covariant=True)

# Part of every signing key: cursors of another format (or other uses of the secret) never verify.
_PURPOSE = b"taskapi.cursor.v1\x00"

_INVALID = "The cursor is not valid for this listing; start again from the first page."


@dataclass(frozen=True, kw_only=True)
class Keyset:
    """An order over a table's columns, all in one direction, the last of them unique (the id).

    A NULL sorts as if larger than every value: last ascending, first descending. That is
    PostgreSQL's own default, so one index serves both directions there; SQLite is told so
    explicitly. Either way the descending order is exactly the ascending one reversed.
    """

    name: str
    columns: tuple[KeyedColumnElement[Any], ...]
    descending: bool = False

    def order_by(self) -> list[ColumnElement[Any]]:
        return [_ordered(column, descending=self.descending) for column in self.columns]

    def after(self, nulls: tuple[bool, ...]) -> ColumnElement[bool]:
        """The rows strictly after the row whose key is given, in this order: each value is
        the bound parameter `after_<i>`, except those `nulls` says are NULL (which change the
        statement's shape)."""
        bound = [
            None if null else bindparam(f"after_{i}", type_=column.type)
            for i, (column, null) in enumerate(zip(self.columns, nulls, strict=True))
        ]
        return _after(self.columns, bound, descending=self.descending)

    def values_of(self, item: object) -> list[Any]:
        return [getattr(item, column.key) for column in self.columns]


@dataclass(frozen=True, kw_only=True)
class Slice(Generic[Item_co]):
    items: Sequence[Item_co]
    # Where the next slice starts; None when this slice reaches the end.
    next_cursor: str | None


def fetch_slice(
    *,
    session: Session,
    query: Select[Any],
    keyset: Keyset,
    limit: int,
    after: str | None,
    secret: bytes,
    scope: str,
    params: Mapping[str, Any] | None = None,
) -> Slice[Row[Any]]:
    """Up to `limit` rows of `query` in `keyset` order, starting after the cursor `after`
    (from the first row when None), as rows of the unit of work's connection.

    `query` (run with its bound `params`) must select the keyset's columns, among others, and
    be unordered. `scope` names
    the listing (owner, filters), so that a cursor only works for the listing that issued it.
    Raises InvalidCursorError for a cursor that was altered, signed with another secret, or
    issued for another listing.
    """
    scope = f"{scope}\x00{keyset.name}"
    arguments = {**(params or {}), "slice_limit": limit + 1}
    nulls = None
    if after is not None:
        values = decode_cursor(cursor=after, secret=secret, scope=scope)
        if len(values) != len(keyset.columns):
            raise InvalidCursorError(_INVALID)
        nulls = tuple(value is None for value in values)
        arguments.update((f"after_{i}", v) for i, v in enumerate(values) if v is not None)
    # One row more than asked for says whether another slice follows, without a COUNT.
    found = rows(session, _sliced(query, keyset, nulls), arguments)
    items = found[:limit]
    next_cursor = None
    if len(found) > limit:
        values = keyset.values_of(items[-1])
        next_cursor = encode_cursor(values=values, secret=secret, scope=scope)
    return Slice(items=items, next_cursor=next_cursor)


def _sliced(query: Select[Any], keyset: Keyset, nulls: tuple[bool, ...] | None) -> Select[Any]:
    """`query` in `keyset` order, after a cursor whose NULL values are `nulls` (from the first
    row when None), its values and limit bound parameters: made once per query and shape, as
    `pagination` pages a query once."""
    shapes = _SLICES.setdefault(query, {})
    shape = (keyset.name, nulls)
    sliced = shapes.get(shape)
    if sliced is None:
        after = query if nulls is None else query.where(keyset.after(nulls))
        sliced = after.order_by(*keyset.order_by()).limit(bindparam("slice_limit"))
        shapes[shape] = sliced
    return sliced


# At most (sorts x 2^key columns) shapes per query, kept as long as the query is.
_SLICES: weakref.WeakKeyDictionary[
    Select[Any], dict[tuple[str, tuple[bool, ...] | None], Select[Any]]
] = weakref.WeakKeyDictionary()


def encode_cursor(*, values: Sequence[Any], secret: bytes, scope: str) -> str:
    """An opaque, signed token holding `values`, valid only for `scope`."""
    payload = json.dumps([_to_json(value) for value in values], separators=(",", ":")).encode()
    return f"{_b64encode(payload)}.{_b64encode(_signature(payload, secret, scope))}"


def decode_cursor(*, cursor: str, secret: bytes, scope: str) -> list[Any]:
    """The values `encode_cursor` signed. Raises InvalidCursorError if `cursor` was not issued,
    unaltered, by `encode_cursor` with this secret and scope."""
    try:
        encoded_payload, encoded_signature = cursor.split(".")
        payload, signature = _b64decode(encoded_payload), _b64decode(encoded_signature)
    except ValueError:
        raise InvalidCursorError(_INVALID) from None
    if not hmac.compare_digest(signature, _signature(payload, secret, scope)):
        raise InvalidCursorError(_INVALID)
    try:
        return [_from_json(value) for value in json.loads(payload)]
    except (TypeError, ValueError, KeyError):
        # Only reachable if the format changed without a new _PURPOSE; still refuse cleanly.
        raise InvalidCursorError(_INVALID) from None


def _signature(payload: bytes, secret: bytes, scope: str) -> bytes:
    # A key per scope (rather than scope + payload in one message) leaves no ambiguity about
    # where the scope ends and the payload begins.
    key = hmac.new(secret, _PURPOSE + scope.encode(), hashlib.sha256).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError("not base64url") from error
    # Base64 leaves spare bits in its last character; demanding the canonical spelling means
    # that no two cursor strings carry the same bytes, so any altered character is refused.
    if _b64encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


# Values JSON cannot spell are tagged with their type, so a cursor decodes without knowing the
# columns' Python types (a TypeDecorator may not tell).
_TAGGED: dict[str, Callable[[str], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "uuid": uuid.UUID,
}


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if value is None or isinstance(value, int | str):
        return value
    raise TypeError(f"a cursor cannot hold a {type(value).__name__}")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        ((kind, text),) = value.items()
        return _TAGGED[kind](text)
    return value


def _nullable(column: KeyedColumnElement[Any]) -> bool:
    return bool(getattr(column, "nullable", True))


def _ordered(column: KeyedColumnElement[Any], *, descending: bool) -> ColumnElement[Any]:
    if not _nullable(column):
        return column.desc() if descending else column.asc()
    return column.desc().nulls_first() if descending else column.asc().nulls_last()


def _after(
    columns: Sequence[KeyedColumnElement[Any]],
    values: Sequence[BindParameter[Any] | None],
    *,
    descending: bool,
) -> ColumnElement[bool]:
    bound = [value for value in values if value is not None]
    if not any(_nullable(column) for column in columns) and len(bound) == len(values):
        # A row-value comparison lets both databases seek in the index to the slice's start.
        if len(columns) > 1:
            left: ColumnElement[Any] = tuple_(*columns)
            right: ColumnElement[Any] = tuple_(*bound)
        else:
            left, right = columns[0], bound[0]
        result: ColumnElement[bool] = left < right if descending else left > right
        return result
    first, value = columns[0], values[0]
    beyond = _beyond(first, value, descending=descending)
    if len(columns) == 1:
        return beyond
    rest = _after(columns[1:], values[1:], descending=descending)
    same = first.is_(None) if value is None else first == value
    return or_(beyond, and_(same, rest))


def _beyond(
    column: KeyedColumnElement[Any], value: BindParameter[Any] | None, *, descending: bool
) -> ColumnElement[bool]:
    """The rows whose `column` comes strictly after `value`, NULL being the largest value."""
    if value is None:
        return column.is_not(None) if descending else false()
    beyond: ColumnElement[bool] = column < value if descending else column > value
    return or_(beyond, column.is_(None)) if _nullable(column) and not descending else beyond
