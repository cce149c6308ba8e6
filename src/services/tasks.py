"""Tasks: the work items each user owns, their lifecycle and their listings.

Every function takes the owner's id and acts only on that owner's tasks: another owner's task
is indistinguishable from one that does not exist. Knows nothing of HTTP; never commits.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from taskapi.errors import (
    ConflictError,
    InvalidFieldError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from taskapi.models import (
    PRIORITY_RANKS,
    Role,
    Task,
    TaskPriority,
    TaskStatus,
    User,
    task_has_tag,
)
from taskapi.models.base import new_id, utc_now
from taskapi.services import task_counts
from taskapi.services.auth import Caller
from taskapi.services.cursors import Keyset, Slice, fetch_slice
from taskapi.services.pagination import Page, PageRequest, fetch_page
from taskapi.services.patches import MergePatch

MAX_TITLE_LENGTH = 200
MAX_TAGS = 10
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


class TaskSort(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    UPDATED_AT = "updated_at"
    UPDATED_AT_DESC = "-updated_at"
    DUE_DATE = "due_date"
    DUE_DATE_DESC = "-due_date"
    PRIORITY = "priority"
    PRIORITY_DESC = "-priority"
    TITLE = "title"
    TITLE_DESC = "-title"


@dataclass(frozen=True, kw_only=True)
class TaskCreate:
    title: str
    description: str | None = None
    status: str = TaskStatus.TODO
    priority: str = TaskPriority.MEDIUM
    due_date: date | None = None
    tags: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class TaskFilters:
    """Which of an owner's tasks to list; every filter given must hold (AND)."""

    statuses: Sequence[str] = ()  # any of these; all when empty
    priority: str | None = None
    tag: str | None = None
    due_before: date | None = None  # strictly before; undated tasks never match
    due_after: date | None = None  # strictly after; undated tasks never match
    q: str | None = None  # a substring of the title, in any case; % and _ match themselves

    @property
    def select_all(self) -> bool:
        """True when no filter is given (an empty one counts as none, as `_listing` reads it)."""
        return not any(getattr(self, field.name) for field in fields(self))


@dataclass(frozen=True, kw_only=True)
class TaskListing:
    """One listing as a client asks for it: whose tasks, which of them, in what order."""

    owner_id: uuid.UUID
    filters: TaskFilters
    sort: TaskSort


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


def listing(
    *,
    session: Session,
    actor: Caller,
    sort: str,
    owner_id: str | None = None,
    status: Sequence[str] | None = None,
    priority: str | None = None,
    tag: str | None = None,
    due_before: str | None = None,
    due_after: str | None = None,
    q: str | None = None,
) -> TaskListing:
    """The listing `actor` asks for with the contract's parameters (already validated; dates
    as RFC 3339 full-dates). Raises as `listing_owner` does."""
    return TaskListing(
        owner_id=listing_owner(session=session, actor=actor, owner_id=owner_id),
        filters=TaskFilters(
            statuses=tuple(status or ()),
            priority=priority,
            tag=tag,
            due_before=parse_date(due_before),
            due_after=parse_date(due_after),
            q=q,
        ),
        sort=TaskSort(sort),
    )


def parse_date(value: str | date | None) -> date | None:
    """A date the contract has checked (`format: date`) as a date: the one place they are read."""
    return date.fromisoformat(value) if isinstance(value, str) else value


class TaskUpdate(MergePatch):
    """A merge patch of a task (values already typed: a date for due_date); None removes the
    optional fields."""

    noun = "Tasks"
    fields = frozenset({"title", "description", "status", "priority", "due_date", "tags"})


def listing_owner(*, session: Session, actor: Caller, owner_id: str | None) -> uuid.UUID:
    """Whose tasks `actor` lists: their own, or (admins only) the user named by `owner_id`.

    Raises PermissionDeniedError when a non-admin names an owner, NotFoundError when the
    named owner does not exist.
    """
    if owner_id is None:
        return actor.id
    if actor.role != Role.ADMIN:
        raise PermissionDeniedError("Only admins may list other users' tasks.")
    try:
        key = uuid.UUID(owner_id)
    except ValueError:
        raise NotFoundError("No user has this id.") from None
    if session.connection().execute(_USER_EXISTS, {"id": key}).first() is None:
        raise NotFoundError("No user has this id.")
    return key


def create(*, session: Session, owner_id: uuid.UUID, task_in: TaskCreate) -> TaskView:
    """Create a task for `owner_id` at version 1.

    The title is stored trimmed; a task created done gets its completed_at. Raises
    InvalidFieldError when the title is blank or too long once trimmed, or the tags break their
    rules (at most 10, unique, each matching TAG_PATTERN).

    One INSERT of every column's value, made here: the row needs nothing from the database,
    so the ORM's unit of work (an object, its state, a flush) would only cost time while the
    writer holds SQLite's one write lock.
    """
    status, priority = _known_status(task_in.status), _known_priority(task_in.priority)
    now = utc_now()
    task = NewTask(
        id=new_id(),
        owner_id=owner_id,
        title=_clean_title(task_in.title),
        description=task_in.description,
        status=status,
        priority=priority,
        priority_rank=PRIORITY_RANKS[priority],
        due_date=task_in.due_date,
        tags=_clean_tags(task_in.tags),
        created_at=now,
        updated_at=now,
        completed_at=now if status == TaskStatus.DONE else None,
        version=1,
    )
    session.execute(_INSERT_TASK, asdict(task))
    task_counts.adjust(session=session, owner_id=owner_id, by=1)
    return task


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
    found = session.connection().execute(_OWNED_TASK, key).first()
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


def get_all(*, session: Session, listing: TaskListing, page: PageRequest) -> Page[TaskView]:
    """One numbered page of the owner's tasks that pass the listing's filters, in its order.

    Ties are broken by id in the sort's direction, so pages never overlap while the data holds
    still. Priority sorts by urgency (low < medium < high < urgent). A task without a due date
    sorts after every dated one by due_date, and before every one by -due_date (as if due at
    the end of time), on SQLite and PostgreSQL alike.
    """
    owner_id, filters = listing.owner_id, listing.filters
    query, params = _listing(owner_id, filters, order=_KEYSETS[listing.sort])
    # Every task of the owner is listed: their kept count is the total (no COUNT needed).
    total = task_counts.get(session=session, owner_id=owner_id) if filters.select_all else None
    return fetch_page(session=session, query=query, page=page, total=total, params=params)


def get_all_after(
    *, session: Session, listing: TaskListing, limit: int, after: str | None, secret: bytes
) -> Slice[TaskView]:
    """Up to `limit` of the listing's tasks, in its order (as `get_all`),
    starting after the cursor `after` (from the first when None), with the cursor of the next
    slice (None at the end).

    Rows inserted or deleted between slices are never repeated nor skipped; a task whose sort
    key changes moves with it. Raises InvalidCursorError for a cursor that was altered, signed
    with another secret, or issued for another owner, filter or sort.
    """
    query, params = _listing(listing.owner_id, listing.filters)
    return fetch_slice(
        session=session,
        query=query,
        params=params,
        keyset=_KEYSETS[listing.sort],
        limit=limit,
        after=after,
        secret=secret,
        scope=_scope(listing.owner_id, listing.filters),
    )


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
_INSERT_TASK = insert(cast(Table, Task.__table__))
_OWNED_TASK = select(Task.__table__).where(
    _TASKS.id == bindparam("id"), _TASKS.owner_id == bindparam("owner_id")
)
_USERS = User.__table__.c
_USER_EXISTS = select(_USERS.id).where(_USERS.id == bindparam("id"))


def _listing(
    owner_id: uuid.UUID, filters: TaskFilters, *, order: Keyset | None = None
) -> tuple[Select[Any], dict[str, Any]]:
    """The listing's statement, in `order` when given, and the values of its bound parameters.

    Unfiltered, it is one statement per order, made once, with the owner a bound parameter:
    building a statement and its cache key cost more than running it on an owner's first
    page. A filtered listing is built for its request, its values in it."""
    if filters.select_all:
        return _ALL_OF_OWNER[order.name if order else None], {"owner_id": owner_id}
    conditions: list[ColumnElement[bool]] = [_TASKS.owner_id == owner_id]
    if filters.statuses:
        conditions.append(_TASKS.status.in_(filters.statuses))
    if filters.priority is not None:
        conditions.append(_TASKS.priority == filters.priority)
    if filters.tag is not None:
        conditions.append(task_has_tag(filters.tag))
    if filters.due_before is not None:
        conditions.append(_TASKS.due_date < filters.due_before)
    if filters.due_after is not None:
        conditions.append(_TASKS.due_date > filters.due_after)
    if filters.q:
        # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite, with LIKE's wildcards escaped.
        # SQLite folds ASCII letters only: there a non-ASCII letter matches its own case alone.
        conditions.append(_TASKS.title.icontains(filters.q, autoescape=True))
    query = select(Task.__table__).where(*conditions)
    return (query.order_by(*order.order_by()) if order else query), {}


def _scope(owner_id: uuid.UUID, filters: TaskFilters) -> str:
    """The listing a cursor belongs to (the sort is added by the keyset), in one spelling."""
    canonical = {**asdict(filters), "statuses": sorted(set(filters.statuses))}
    return json.dumps({"owner": str(owner_id), "filters": canonical}, sort_keys=True, default=str)


_SORT_COLUMNS = {
    "created_at": _TASKS.created_at,
    "updated_at": _TASKS.updated_at,
    "due_date": _TASKS.due_date,
    "priority": _TASKS.priority_rank,
    "title": _TASKS.title,
}

_KEYSETS = {
    sort: Keyset(
        name=sort.value,
        columns=(_SORT_COLUMNS[sort.value.removeprefix("-")], _TASKS.id),
        descending=sort.value.startswith("-"),
    )
    for sort in TaskSort
}

_OWNED = select(Task.__table__).where(_TASKS.owner_id == bindparam("owner_id"))
_ALL_OF_OWNER: dict[str | None, Select[Any]] = {
    None: _OWNED,
    **{keyset.name: _OWNED.order_by(*keyset.order_by()) for keyset in _KEYSETS.values()},
}
