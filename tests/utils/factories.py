"""Builders for test data: valid by default, overridden by keyword where a test cares."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from taskapi.models import User
from taskapi.services import users

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
    return users.create(session=session, user_in=users.UserCreate(**user_payload(**overrides)))


def register_user(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/users", json=user_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
