"""Task listings: which of an owner's tasks a client asks for, in what order, by numbered page
or by cursor.

Every listing is one owner's tasks (another owner's, to an admin only). Knows nothing of HTTP;
never commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm import Session

from taskapi.errors import NotFoundError, PermissionDeniedError
from taskapi.models import Role, Task, User, task_has_tag
from taskapi.services import task_counts
from taskapi.services.auth import Caller
from taskapi.services.cursors import Keyset, Slice, fetch_slice
from taskapi.services.pagination import Page, PageRequest, fetch_page
from taskapi.services.tasks import TaskView, parse_date
from taskapi.statements import first_row

_TASKS = Task.__table__.c


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
    if first_row(session, _USER_EXISTS, {"id": key}) is None:
        raise NotFoundError("No user has this id.")
    return key


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
