"""The tasks table: the work items each user owns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Uuid,
    literal,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from taskapi.models.base import Base, new_id, utc_now


class TaskStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


# Priorities sort by urgency, not by name. The rank is stored beside the name (and the check
# constraint below keeps the two in step) because an ORDER BY over a CASE expression could not
# use an index, nor compare cleanly in a keyset cursor; a small integer column can do both.
PRIORITY_RANKS: dict[str, int] = {
    TaskPriority.LOW: 0,
    TaskPriority.MEDIUM: 1,
    TaskPriority.HIGH: 2,
    TaskPriority.URGENT: 3,
}

# JSON keeps the tags portable; on PostgreSQL, JSONB adds the `@>` containment operator.
TAG_LIST = JSON().with_variant(JSONB(), "postgresql")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("status IN ('todo', 'in_progress', 'done')", name="status_known"),
        CheckConstraint("priority IN ('low', 'medium', 'high', 'urgent')", name="priority_known"),
        CheckConstraint(
            "priority_rank = CASE priority WHEN 'low' THEN 0 WHEN 'medium' THEN 1"
            " WHEN 'high' THEN 2 WHEN 'urgent' THEN 3 END",
            name="priority_rank_matches",
        ),
        CheckConstraint(
            "(status = 'done') = (completed_at IS NOT NULL)", name="completed_at_iff_done"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        # Every listing is one owner's tasks in one order, ties broken by id: each index serves
        # `WHERE owner_id = ? ORDER BY <key>, id` in either direction (and the foreign key).
        Index("ix_tasks_owner_id_created_at_id", "owner_id", "created_at", "id"),
        Index("ix_tasks_owner_id_updated_at_id", "owner_id", "updated_at", "id"),
        Index("ix_tasks_owner_id_due_date_id", "owner_id", "due_date", "id"),
        Index("ix_tasks_owner_id_priority_rank_id", "owner_id", "priority_rank", "id"),
        Index("ix_tasks_owner_id_title_id", "owner_id", "title", "id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Stored trimmed.
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(10_000))
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.TODO.value)
    priority: Mapped[str] = mapped_column(String(16), default=TaskPriority.MEDIUM.value)
    priority_rank: Mapped[int] = mapped_column(
        SmallInteger, default=PRIORITY_RANKS[TaskPriority.MEDIUM]
    )
    due_date: Mapped[date | None]
    tags: Mapped[list[str]] = mapped_column(TAG_LIST, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    completed_at: Mapped[datetime | None]
    # Counts from 1 and is raised by every flushed change (so it can serve as an ETag). Every
    # UPDATE and DELETE also carries `WHERE version = <the version read>`, so a write that races
    # another fails (StaleDataError) instead of silently overwriting it.
    version: Mapped[int] = mapped_column()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (read once, by the mapper)


class json_array_contains(FunctionElement[bool]):  # noqa: N801 (SQL functions read lower-case)
    """`array @> [value]` for a JSON array column, on SQLite and PostgreSQL alike."""

    type = Boolean()
    inherit_cache = True


@compiles(json_array_contains, "postgresql")
def _contains_on_postgresql(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    array, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{array} @> jsonb_build_array({value})"


@compiles(json_array_contains, "sqlite")
def _contains_on_sqlite(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    array, value = (compiler.process(clause, **kw) for clause in element.clauses)
    # Both pieces are compiled SQL (the value a bound parameter), never text from a request.
    return f"EXISTS (SELECT 1 FROM json_each({array}) WHERE json_each.value = {value})"  # noqa: S608


@compiles(json_array_contains)
def _contains_elsewhere(_element: json_array_contains, compiler: SQLCompiler, **_kw: Any) -> str:
    raise CompileError(f"json_array_contains is not implemented for {compiler.dialect.name}")


def task_has_tag(tag: str) -> ColumnElement[bool]:
    """True for the tasks whose tags include `tag`."""
    # The table's column, not the mapped attribute: usable in statements that read rows
    # without the ORM as well as in ORM ones.
    return json_array_contains(Task.__table__.c.tags, literal(tag, String()))
