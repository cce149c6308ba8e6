"""Offset pagination as plain data: what a page asked for, what it holds, and how many exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

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
    *, session: Session, query: Select[Any], page: PageRequest, total: int | None = None
) -> Page[Row[Any]]:
    """Run `query` for one page, plus the count of every row it would return, unless the
    caller already knows that `total`. The items are rows of the unit of work's connection.

    `query` must select columns, not mapped entities, and already be ordered by a unique key,
    or pages could repeat or skip rows.
    """
    connection = session.connection()
    if total is None:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = connection.scalar(counted)
    items = connection.execute(query.limit(page.limit).offset(page.offset)).all()
    return Page(items=items, page=page.page, limit=page.limit, total=total or 0)
