"""How many tasks each user owns, kept beside the tasks.

The total of an unfiltered listing is then a read of a few rows instead of a COUNT over every
task the owner has, which grows with them (a million-row table made page 1 several times
slower). The count changes in the same transaction as the tasks it counts, so it is exact;
filtered listings still count their rows.

A user's count is split over up to SHARES rows, and each create or delete adjusts one picked at
random. Kept in one row (first on the user's own row), every write of one user queued on that
row's lock until the writer before it had committed, and every read of the user walked the
row's trail of superseded versions: on PostgreSQL, one account creating tasks from two workers
was no faster than from one.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from taskapi.models import TaskCount
from taskapi.statements import first_row, write

SHARES = 16

_COUNTS = TaskCount.__table__.c


def _upsert(insert: Callable[..., postgresql.Insert | sqlite.Insert]) -> Insert:
    """The dialect's INSERT ... ON CONFLICT adding `:by` to one share's count: the first write
    to a share creates its row."""
    statement = insert(TaskCount.__table__).values(
        owner_id=bindparam("owner_id"), share=bindparam("share"), count=bindparam("by")
    )
    return statement.on_conflict_do_update(
        index_elements=[_COUNTS.owner_id, _COUNTS.share],
        set_={"count": _COUNTS.count + statement.excluded.count},
    )


# Built once, and on the table: on the mapped class the statement takes the ORM's bulk-insert
# path, for a write no object stands for, and building it per call rebuilds `excluded` (an
# alias of the table, column by column) every time.
_UPSERTS = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


def adjust(*, session: Session, owner_id: uuid.UUID, by: int) -> None:
    """Add `by` (negative to remove) to the owner's count, atomically in the database."""
    upsert = _UPSERTS[session.get_bind().dialect.name]
    write(session, upsert, _adjustment(owner_id, by))


def _adjustment(owner_id: uuid.UUID, by: int) -> dict[str, Any]:
    share = random.randrange(SHARES)  # noqa: S311 (spreads writes; nothing secret rides on it)
    return {"owner_id": owner_id, "share": share, "by": by}


class CountedInsert:
    """An INSERT of one row its owner now has (its values bound by column name, the owner's
    as `owner_id`), made with the owner's count raised by one.

    On PostgreSQL both are one statement, the INSERT in a WITH of the count's upsert, which
    runs it once and in full whether the upsert reads it or not: one round trip instead of
    two (README, "What makes taskapi fast"). SQLite allows no INSERT in a WITH; it runs the
    two on the writer's connection, where a statement costs no round trip.
    """

    def __init__(self, table: Table) -> None:
        inserted = insert(table).values({column.key: bindparam(column.key) for column in table.c})
        self._statements = {
            "postgresql": (_UPSERTS["postgresql"].add_cte(inserted.cte("inserted")),),
            "sqlite": (inserted, _UPSERTS["sqlite"]),
        }

    def run(self, *, session: Session, values: Mapping[str, Any]) -> None:
        """Insert the row of `values` (every column's) and count it, both in the unit of work
        of `session`: undone with it, or together when the statement fails."""
        params = {**values, **_adjustment(values["owner_id"], 1)}
        for statement in self._statements[session.get_bind().dialect.name]:
            write(session, statement, params)


# On the table too: a read of plain numbers that the ORM has nothing to add to.
_TOTAL = select(func.sum(_COUNTS.count).label("total")).where(
    _COUNTS.owner_id == bindparam("owner_id")
)


def get(*, session: Session, owner_id: uuid.UUID) -> int:
    """How many tasks the owner has, as last flushed."""
    found = first_row(session, _TOTAL, {"owner_id": owner_id})
    total: int | None = found[0] if found else None
    return total or 0
