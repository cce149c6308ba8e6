"""Tasks: the work items each user owns, and their lifecycle (listings: `task_listings`).

Every function takes the owner's id and acts only on that owner's tasks: another owner's task
is indistinguishable from one that does not exist. Knows nothing of HTTP; never commits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from taskapi.errors import (
    ConflictError,
    InvalidFieldError,
    NotFoundError,
    PreconditionFailedError,
)
from taskapi.models import (
    PRIORITY_RANKS,
    Task,
    TaskPriority,
    TaskStatus,
)
from taskapi.models.base import new_id, utc_now
from taskapi.services import task_counts
from taskapi.services.patches import MergePatch
from taskapi.statements import first_row

MAX_TITLE_LENGTH = 200
MAX_TAGS = 10
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True, kw_only=True)
class TaskCreate:
    title: str
    description: str | None = None
    status: str = TaskStatus.TODO
    priority: str = TaskPriority.MEDIUM
    due_date: date | None = None
    tags: Sequence[str] = ()


class TaskView(Protocol):
    """A task as replies show it, whether a mapped `Task` (after a write) or a row of the
    table read without the ORM (`get` and the listings)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def owner_id(self) -> uuid.UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def due_date(self) -> date | None: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def version(self) -> int: ...


def parse_date(value: str | date | None) -> date | None:
    """A date the contract has checked (`format: date`) as a date: the one place they are read."""
    return date.fromisoformat(value) if isinstance(value, str) else value


class TaskUpdate(MergePatch):
    """A merge patch of a task (values already typed: a date for due_date); None removes the
    optional fields."""

    noun = "Tasks"
    fields = frozenset({"title", "description", "status", "priority", "due_date", "tags"})


def create(*, session: Session, owner_id: uuid.UUID, task_in: TaskCreate) -> TaskView:
    """Create a task for `owner_id` at version 1.

    The title is stored trimmed; a task created done gets its completed_at. Raises
    InvalidFieldError when the title is blank or too long once trimmed, or the tags break their
    rules (at most 10, unique, each matching TAG_PATTERN).

    One INSERT of every column's value, made here, with the owner's count
    (`task_counts.CountedInsert`): the row needs nothing from the database, so the ORM's unit
    of work (an object, its state, a flush) would only cost time while the writer holds
    SQLite's one write lock.
    """
    status, priority = _known_status(task_in.status), _known_priority(task_in.priority)
    now = utc_now()
    # The row's values, handed as they are to the INSERT and the answer (`asdict` would copy
    # each of them deeply).
    values: dict[str, Any] = {
        "id": new_id(),
        "owner_id": owner_id,
        "title": _clean_title(task_in.title),
        "description": task_in.description,
        "status": status,
        "priority": priority,
        "priority_rank": PRIORITY_RANKS[priority],
        "due_date": task_in.due_date,
        "tags": _clean_tags(task_in.tags),
        "created_at": now,
        "updated_at": now,
        "completed_at": now if status == TaskStatus.DONE else None,
        "version": 1,
    }
    _INSERT_COUNTED_TASK.run(session=session, values=values)
    return NewTask(**values)


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task as `create` inserted it."""

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str | None
    status: str
    priority: str
    priority_rank: int
    due_date: date | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int


def get(*, session: Session, owner_id: uuid.UUID, task_id: str) -> TaskView:
    """The owner's task with this public id, as last flushed. Raises NotFoundError, alike,
    for an unknown or malformed id and for another owner's task."""
    key = {"id": _task_key(task_id), "owner_id": owner_id}
    found: TaskView | None = first_row(session, _OWNED_TASK, key)
    if found is None:
        raise NotFoundError("No task has this id.")
    return found


def _owned(session: Session, owner_id: uuid.UUID, task_id: str) -> Task:
    """The owner's task, mapped, to change it. Raises NotFoundError as `get` does."""
    task = session.get(Task, _task_key(task_id))
    if task is None or task.owner_id != owner_id:
        raise NotFoundError("No task has this id.")
    return task


def _task_key(task_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(task_id)
    except ValueError:
        raise NotFoundError("No task has this id.") from None


def update(
    *,
    session: Session,
    owner_id: uuid.UUID,
    task_id: str,
    changes: TaskUpdate,
    expected_version: int | None,
) -> Task:
    """Apply a merge patch.

    A None clears description and due_date and empties tags; title, status and priority cannot
    be removed. Status done sets completed_at, leaving done clears it. The version and
    updated_at move only when a value actually changes. Raises NotFoundError as `get` does,
    PreconditionFailedError when `expected_version` is given and stale (or the task changes
    concurrently), ConflictError when it changes concurrently with no version given, and
    InvalidFieldError for a value `create` would refuse (TaskUpdate refuses unknown fields).
    """
    task = _owned(session, owner_id, task_id)
    _check_version(task, expected_version)
    with _guard_concurrent_writes(session, expected_version):
        for field, value in changes.items():
            _apply(task, field, value)
    return task


def delete(
    *, session: Session, owner_id: uuid.UUID, task_id: str, expected_version: int | None
) -> None:
    """Delete the owner's task. Raises NotFoundError as `get` does, and PreconditionFailedError
    or ConflictError as `update` does."""
    task = _owned(session, owner_id, task_id)
    _check_version(task, expected_version)
    with _guard_concurrent_writes(session, expected_version):
        session.delete(task)
    task_counts.adjust(session=session, owner_id=owner_id, by=-1)


def _clean_title(title: str) -> str:
    # The spec can bound the raw string, but not its length once trimmed.
    trimmed = title.strip()
    if not 1 <= len(trimmed) <= MAX_TITLE_LENGTH:
        raise InvalidFieldError(
            f"A title needs 1 to {MAX_TITLE_LENGTH} characters once trimmed.", field="title"
        )
    return trimmed


def _clean_tags(tags: Sequence[str]) -> list[str]:
    # The spec says this too; checked again because a JSON column has no constraint to enforce
    # it, and the tag filter relies on it.
    if len(tags) > MAX_TAGS or len(set(tags)) != len(tags):
        raise InvalidFieldError(f"A task has at most {MAX_TAGS} tags, each once.", field="tags")
    if not all(TAG_PATTERN.fullmatch(tag) for tag in tags):
        raise InvalidFieldError(f"Each tag must match ^{TAG_PATTERN.pattern}$.", field="tags")
    return list(tags)


def _known_status(status: str) -> str:
    if status not in set(TaskStatus):
        raise InvalidFieldError(
            f"A task's status is one of {', '.join(TaskStatus)}.", field="status"
        )
    return status


def _known_priority(priority: str) -> str:
    if priority not in PRIORITY_RANKS:
        raise InvalidFieldError(
            f"A task's priority is one of {', '.join(TaskPriority)}.", field="priority"
        )
    return priority


def _set_status(task: Task, status: str) -> None:
    if _known_status(status) == task.status:
        return
    if status == TaskStatus.DONE:
        task.completed_at = utc_now()
    elif task.completed_at is not None:
        task.completed_at = None
    task.status = status


def _set_priority(task: Task, priority: str) -> None:
    if _known_priority(priority) != task.priority:
        task.priority = priority
        task.priority_rank = PRIORITY_RANKS[priority]


def _apply(task: Task, field: str, value: Any) -> None:
    if value is None and field in {"title", "status", "priority"}:
        raise InvalidFieldError(f"A task's {field} can be changed but not removed.", field=field)
    if field == "status":
        _set_status(task, value)
    elif field == "priority":
        _set_priority(task, value)
    else:
        if field == "title":
            value = _clean_title(value)
        elif field == "tags":
            value = _clean_tags(value or [])
        # Only real changes dirty the row, so a no-op patch keeps the version (and the ETag).
        if getattr(task, field) != value:
            setattr(task, field, value)


def _check_version(task: Task, expected_version: int | None) -> None:
    if expected_version is not None and task.version != expected_version:
        raise PreconditionFailedError(
            f"The task is at version {task.version}, not {expected_version}; read it again."
        )


@contextmanager
def _guard_concurrent_writes(session: Session, expected_version: int | None) -> Iterator[None]:
    """Flush the block's writes in a savepoint. The mapper's version check makes a write that
    lost a race fail; that becomes a domain error, and the session stays usable."""
    try:
        with session.begin_nested():
            yield
    except StaleDataError:
        if expected_version is not None:
            raise PreconditionFailedError("The task changed meanwhile; read it again.") from None
        raise ConflictError("The task changed meanwhile; try again.") from None


# Reads select rows of the table rather than mapped objects: a task that is only shown needs
# no identity map, no change tracking and no ORM compilation of its statement.
_TASKS = Task.__table__.c
# On the table: on the mapped class, an INSERT takes the ORM's bulk path (a mapper walk per
# row), for a row no object stands for. (The declarative base types __table__ loosely.)
_INSERT_COUNTED_TASK = task_counts.CountedInsert(cast(Table, Task.__table__))
_OWNED_TASK = select(Task.__table__).where(
    _TASKS.id == bindparam("id"), _TASKS.owner_id == bindparam("owner_id")
)
