"""Handlers for the /users operations."""

from __future__ import annotations

from typing import Any

from connexion import request
from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.models import User
from taskapi.services import users
from taskapi.services.pagination import PageRequest
from taskapi.web.responses import json_reply, page_reply, timestamp


def user_resource(user: User) -> dict[str, Any]:
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


def create_user(*, session: Session, body: dict[str, Any]) -> Response:
    user = users.create(session=session, user_in=users.UserCreate(**body))
    location = f"{request.url.path}/{user.id}"
    return json_reply(user_resource(user), status=201, headers={"Location": location})


def get_user(*, session: Session, user_id: str) -> Response:
    return json_reply(user_resource(users.get(session=session, user_id=user_id)))


def list_users(*, session: Session, page: int, limit: int, sort: str) -> Response:
    found = users.get_all(
        session=session, page=PageRequest(page=page, limit=limit), sort=users.UserSort(sort)
    )
    return page_reply(found, path=request.url.path, query={"sort": sort}, shape=user_resource)
