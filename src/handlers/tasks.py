"""Handlers for the /tasks operations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from connexion import request
from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.models import Task, User
from taskapi.services import tasks
from taskapi.services.pagination import PageRequest
from taskapi.web.conditional import etag, expected_version, still_fresh
from taskapi.web.idempotency import idempotent_reply
from taskapi.web.problems import FieldError, RequestValidationError
from taskapi.web.responses import empty_reply, json_reply, page_reply, slice_reply, timestamp


def task_resource(task: Task) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "owner_id": str(task.owner_id),
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "priority": task.priority,
        "due_date": task.due_date.isoformat() if task.due_date else None,
        "tags": list(task.tags),
        "created_at": timestamp(task.created_at),
        "updated_at": timestamp(task.updated_at),
        "completed_at": timestamp(task.completed_at) if task.completed_at else None,
    }


def create_task(*, session: Session, current_user: User, body: dict[str, Any]) -> Response:
    def create() -> Response:
        task_in = tasks.TaskCreate(**_typed(body))
        task = tasks.create(session=session, owner_id=current_user.id, task_in=task_in)
        location = f"{request.url.path}/{task.id}"
        return _task_reply(task, status=201, headers={"Location": location})

    return idempotent_reply(
        session=session,
        owner_id=current_user.id,
        operation="tasks.create_task",
        key=request.headers.get("Idempotency-Key"),
        request_body=body,
        respond=create,
    )


def get_task(*, session: Session, current_user: User, task_id: str) -> Response:
    task = tasks.get(session=session, owner_id=current_user.id, task_id=task_id)
    if still_fresh(request.headers.get("If-None-Match"), etag(task.version)):
        return empty_reply(status=304, headers={"ETag": etag(task.version)})
    return _task_reply(task)


def update_task(
    *, session: Session, current_user: User, task_id: str, body: dict[str, Any]
) -> Response:
    task = tasks.update(
        session=session,
        owner_id=current_user.id,
        task_id=task_id,
        changes=_typed(body),
        expected_version=expected_version(request.headers.get("If-Match")),
    )
    return _task_reply(task)


def delete_task(*, session: Session, current_user: User, task_id: str) -> Response:
    tasks.delete(
        session=session,
        owner_id=current_user.id,
        task_id=task_id,
        expected_version=expected_version(request.headers.get("If-Match")),
    )
    return empty_reply()


def list_tasks(
    *,
    session: Session,
    current_user: User,
    cursor_secret: bytes,
    sort: str,
    limit: int,
    page: int | None = None,
    cursor: str | None = None,
    owner_id: str | None = None,
    status: list[str] | None = None,
    priority: str | None = None,
    tag: str | None = None,
    due_before: str | None = None,
    due_after: str | None = None,
    q: str | None = None,
) -> Response:
    if page is not None and cursor is not None:
        raise RequestValidationError([FieldError("/query/cursor", "cannot be combined with page")])
    filters = {"status": status, "priority": priority, "tag": tag, "q": q}
    filters |= {"due_before": due_before, "due_after": due_after, "owner_id": owner_id}
    # Links repeat every criterion given, so following them walks the same listing.
    criteria = {name: value for name, value in filters.items() if value is not None}
    listing = _Listing(
        owner=tasks.listing_owner(session=session, actor=current_user, owner_id=owner_id),
        filters=tasks.TaskFilters(
            statuses=tuple(status or ()),
            priority=priority,
            tag=tag,
            due_before=date.fromisoformat(due_before) if due_before else None,
            due_after=date.fromisoformat(due_after) if due_after else None,
            q=q,
        ),
        sort=tasks.TaskSort(sort),
        criteria={**criteria, "sort": sort},
    )
    if cursor is None:
        return _page(session, listing, PageRequest(page=page or 1, limit=limit))
    return _slice(session, listing, limit=limit, cursor=cursor, secret=cursor_secret)


@dataclass(frozen=True)
class _Listing:
    owner: uuid.UUID
    filters: tasks.TaskFilters
    sort: tasks.TaskSort
    criteria: dict[str, Any]


def _page(session: Session, listing: _Listing, page: PageRequest) -> Response:
    found = tasks.get_all(
        session=session,
        owner_id=listing.owner,
        filters=listing.filters,
        sort=listing.sort,
        page=page,
    )
    return page_reply(found, path=request.url.path, query=listing.criteria, shape=task_resource)


def _slice(
    session: Session, listing: _Listing, *, limit: int, cursor: str, secret: bytes
) -> Response:
    found = tasks.get_all_after(
        session=session,
        owner_id=listing.owner,
        filters=listing.filters,
        sort=listing.sort,
        limit=limit,
        after=cursor or None,  # an empty cursor starts the walk
        secret=secret,
    )
    return slice_reply(
        found,
        path=request.url.path,
        query=listing.criteria,
        limit=limit,
        cursor=cursor,
        shape=task_resource,
    )


def _task_reply(
    task: Task, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return json_reply(
        task_resource(task), status=status, headers={**(headers or {}), "ETag": etag(task.version)}
    )


def _typed(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its dates as dates (the spec has already checked their form)."""
    due = body.get("due_date")
    return {**body, "due_date": date.fromisoformat(due)} if isinstance(due, str) else body
