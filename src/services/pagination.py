"""Offset pagination as plain data: what a page asked for, what it holds, and how many exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

Item = TypeVar("Item")


@dataclass(frozen=True, kw_only=True)
class PageRequest:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass(frozen=True, kw_only=True)
class Page(Generic[Item]):
    items: Sequence[Item]
    page: int
    limit: int
    total: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.limit)  # ceiling division


def fetch_page(
    *, session: Session, query: Select[Item], page: PageRequest, total: int | None = None
) -> Page[Item]:
    """Run `query` for one page, plus the count of every row it would return, unless the
    caller already knows that `total`.

    `query` must already be ordered by a unique key, or pages could repeat or skip rows.
    """
    if total is None:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = session.scalars(query.limit(page.limit).offset(page.offset)).all()
    return Page(items=items, page=page.page, limit=page.limit, total=total or 0)
