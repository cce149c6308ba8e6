"""Offset pagination as plain data: what a page asked for, what it holds, and how many exist."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.orm import Session

from taskapi.statements import rows

# Covariant: a page of rows is a page of any shape those rows have (`tasks.TaskView`).
Item_co = TypeVar("Item_co", covariant=True)


@dataclass(frozen=True, kw_only=True)
class PageRequest:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass(frozen=True, kw_only=True)
class Page(Generic[Item_co]):
    items: Sequence[Item_co]
    page: int
    limit: int
    total: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.limit)  # ceiling division


def fetch_page(
    *,
    session: Session,
    query: Select[Any],
    page: PageRequest,
    total: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> Page[Row[Any]]:
    """Run `query` (with its bound `params`) for one page, plus the count of every row it
    would return, unless the caller already knows that `total`. The items are rows of the unit
    of work's connection.

    `query` must select columns, not mapped entities, and already be ordered by a unique key,
    or pages could repeat or skip rows. A query made once and run with new `params` each time
    is paged once too.
    """
    connection = session.connection()
    params = params or {}
    if total is None:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = connection.scalar(counted, params)
    paged = _PAGED.get(query)
    if paged is None:
        paged = _PAGED[query] = query.limit(bindparam("page_limit")).offset(
            bindparam("page_offset")
        )
    arguments = {**params, "page_limit": page.limit, "page_offset": page.offset}
    items = rows(session, paged, arguments)
    return Page(items=items, page=page.page, limit=page.limit, total=total or 0)


# Each query's paged statement, kept as long as the query is: building one (and its cache key)
# costs more than running it on a small table; a query built for one request takes its own away.
_PAGED: weakref.WeakKeyDictionary[Select[Any], Select[Any]] = weakref.WeakKeyDictionary()
