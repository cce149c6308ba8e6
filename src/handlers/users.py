"""Handlers for the /users operations."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.models import User
from taskapi.services import users
from taskapi.services.auth import AuthPolicy, Caller
from taskapi.services.pagination import PageRequest
from taskapi.web.responses import empty_reply, json_reply, page_reply, timestamp


def user_resource(user: users.UserView) -> dict[str, Any]:
    """The public shape of a user: never the password hash."""
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "age": user.age,
        "role": user.role,
        "created_at": timestamp(user.created_at),
        "updated_at": timestamp(user.updated_at),
    }


def create_user(
    *, session: Session, auth: AuthPolicy, client: str, request_path: str, body: dict[str, Any]
) -> Response:
    user = users.register(
        session=session, policy=auth, user_in=users.UserCreate(**body), client=client
    )
    location = f"{request_path}/{user.id}"
    return json_reply(user_resource(user), status=201, headers={"Location": location})


def get_user(*, session: Session, caller: Caller, user_id: str) -> Response:
    user = users.get(session=session, actor=caller, user_id=user_id)
    return json_reply(user_resource(user))


def list_users(
    *,
    session: Session,
    caller: Caller,
    request_path: str,
    page: int,
    limit: int,
    sort: str,
) -> Response:
    found = users.get_all(
        session=session,
        actor=caller,
        page=PageRequest(page=page, limit=limit),
        sort=users.UserSort(sort),
    )
    return page_reply(found, path=request_path, query={"sort": sort}, shape=user_resource)


def delete_user(*, session: Session, caller: Caller, user_id: str) -> Response:
    users.delete(session=session, actor=caller, user_id=user_id)
    return empty_reply()


def get_current_user(*, current_user: User) -> Response:
    return json_reply(user_resource(current_user))


def update_current_user(
    *, session: Session, auth: AuthPolicy, current_user: User, client: str, body: dict[str, Any]
) -> Response:
    user = users.update(
        session=session,
        policy=auth,
        user=current_user,
        changes=users.UserUpdate(body),
        client=client,
    )
    return json_reply(user_resource(user))


def delete_current_user(
    *, session: Session, auth: AuthPolicy, current_user: User, client: str, body: dict[str, Any]
) -> Response:
    users.delete_own_account(
        session=session,
        policy=auth,
        user=current_user,
        current_password=body["current_password"],
        client=client,
    )
    return empty_reply()
