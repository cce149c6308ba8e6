"""Handlers for the /tasks operations."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.services import task_listings, tasks
from taskapi.services.auth import Caller
from taskapi.services.pagination import PageRequest
from taskapi.web.conditional import etag, expected_version, still_fresh
from taskapi.web.problems import FieldError, RequestValidationError
from taskapi.web.responses import empty_reply, json_reply, page_reply, slice_reply, timestamp


def task_resource(task: tasks.TaskView) -> dict[str, Any]:
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


def create_task(
    *, session: Session, caller: Caller, request_path: str, body: dict[str, Any]
) -> Response:
    task_in = tasks.TaskCreate(**_typed(body))
    task = tasks.create(session=session, owner_id=caller.id, task_in=task_in)
    return _task_reply(task, status=201, headers={"Location": f"{request_path}/{task.id}"})


def get_task(
    *, session: Session, caller: Caller, if_none_match: str | None, task_id: str
) -> Response:
    task = tasks.get(session=session, owner_id=caller.id, task_id=task_id)
    if still_fresh(if_none_match, etag(task.version)):
        return empty_reply(status=304, headers={"ETag": etag(task.version)})
    return _task_reply(task)


def update_task(
    *,
    session: Session,
    caller: Caller,
    if_match: str | None,
    task_id: str,
    body: dict[str, Any],
) -> Response:
    task = tasks.update(
        session=session,
        owner_id=caller.id,
        task_id=task_id,
        changes=tasks.TaskUpdate(_typed(body)),
        expected_version=expected_version(if_match),
    )
    return _task_reply(task)


def delete_task(
    *, session: Session, caller: Caller, if_match: str | None, task_id: str
) -> Response:
    tasks.delete(
        session=session,
        owner_id=caller.id,
        task_id=task_id,
        expected_version=expected_version(if_match),
    )
    return empty_reply()


def list_tasks(
    *,
    session: Session,
    caller: Caller,
    cursor_secret: bytes,
    request_path: str,
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
    criteria: dict[str, Any] = {"status": status, "priority": priority, "tag": tag, "q": q}
    criteria |= {"due_before": due_before, "due_after": due_after, "owner_id": owner_id}
    listing = task_listings.listing(session=session, actor=caller, sort=sort, **criteria)
    # Links repeat every criterion given, so following them walks the same listing.
    query = {name: value for name, value in {**criteria, "sort": sort}.items() if value is not None}
    if cursor is None:
        numbered = PageRequest(page=page or 1, limit=limit)
        found = task_listings.get_all(session=session, listing=listing, page=numbered)
        return page_reply(found, path=request_path, query=query, shape=task_resource)
    after = cursor or None  # an empty cursor starts the walk
    sliced = task_listings.get_all_after(
        session=session, listing=listing, limit=limit, after=after, secret=cursor_secret
    )
    return slice_reply(
        sliced, path=request_path, query=query, limit=limit, cursor=cursor, shape=task_resource
    )


def _task_reply(
    task: tasks.TaskView, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return json_reply(
        task_resource(task), status=status, headers={**(headers or {}), "ETag": etag(task.version)}
    )


def _typed(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its dates as dates (the spec has already checked their form)."""
    return {**body, "due_date": tasks.parse_date(body["due_date"])} if "due_date" in body else body
