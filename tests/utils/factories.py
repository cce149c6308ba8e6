"""Builders for test data: valid by default, overridden by keyword where a test cares."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from taskapi.models import Task, User
from taskapi.services import tasks, users
from taskapi.services.auth import Caller
from tests.utils.policies import PASSWORDS

_sequence = itertools.count(1)

DEFAULT_PASSWORD = "correct horse battery staple"


def user_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_sequence)
    payload: dict[str, Any] = {
        "email": f"user{n}@example.com",
        "name": f"User {n}",
        "age": 30,
        "password": DEFAULT_PASSWORD,
    }
    payload.update(overrides)
    return payload


def create_user(session: Session, **overrides: Any) -> User:
    user_in = users.UserCreate(**user_payload(**overrides))
    return users.create(session=session, passwords=PASSWORDS, user_in=user_in)


def caller_of(user: User) -> Caller:
    """Who a token of `user` speaks for, as requests see it (`auth.authenticate`)."""
    return Caller(user.id, user.role)


def register_user(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/users", json=user_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def create_task(session: Session, *, owner: User, **overrides: Any) -> Task:
    """A task made by `tasks.create`, as stored, mapped (tests change it through the ORM)."""
    fields: dict[str, Any] = {"title": f"Task {next(_sequence)}", **overrides}
    created = tasks.create(session=session, owner_id=owner.id, task_in=tasks.TaskCreate(**fields))
    stored = session.get(Task, created.id)
    assert stored is not None
    return stored


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def log_in(client: TestClient, *, email: str, password: str = DEFAULT_PASSWORD) -> dict[str, Any]:
    response = client.post("/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def delete_own_account(
    client: TestClient, headers: dict[str, str], *, password: str = DEFAULT_PASSWORD
) -> Any:
    """`DELETE /v1/users/me`, which takes the current password."""
    return client.request(
        "DELETE", "/v1/users/me", json={"current_password": password}, headers=headers
    )


def signed_up(client: TestClient, **overrides: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A registered, logged-in user: their public representation and bearer headers."""
    user = register_user(client, **overrides)
    tokens = log_in(
        client, email=user["email"], password=overrides.get("password", DEFAULT_PASSWORD)
    )
    return user, bearer(tokens["access_token"])
