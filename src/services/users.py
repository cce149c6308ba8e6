"""User accounts: registration and reads. Knows nothing of HTTP; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import UnaryExpression, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapi.errors import ConflictError, NotFoundError
from taskapi.models import Role, User
from taskapi.services.pagination import Page, PageRequest, fetch_page
from taskapi.services.passwords import hash_password


class UserSort(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    EMAIL = "email"
    EMAIL_DESC = "-email"


@dataclass(frozen=True, kw_only=True)
class UserCreate:
    email: str
    name: str
    age: int
    password: str


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create(*, session: Session, user_in: UserCreate) -> User:
    """Register a user with the `user` role.

    The email is stored normalised and the name trimmed; the password only as an argon2id hash.
    Raises ConflictError when the email is taken, whatever its case, including by a concurrent
    registration that commits first.
    """
    user = User(
        email=normalise_email(user_in.email),
        name=user_in.name.strip(),
        age=user_in.age,
        role=Role.USER.value,
        password_hash=hash_password(user_in.password),
    )
    try:
        # The savepoint keeps the outer transaction usable if the unique constraint fires.
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise ConflictError("A user with this email already exists.") from None
    return user


def get(*, session: Session, user_id: str) -> User:
    """The user with this public id. Raises NotFoundError for an unknown or malformed id."""
    try:
        key = uuid.UUID(user_id)
    except ValueError:
        raise NotFoundError("No user has this id.") from None
    user = session.get(User, key)
    if user is None:
        raise NotFoundError("No user has this id.")
    return user


_ORDERINGS: dict[UserSort, tuple[UnaryExpression[Any], ...]] = {
    UserSort.CREATED_AT: (User.created_at.asc(), User.id.asc()),
    UserSort.CREATED_AT_DESC: (User.created_at.desc(), User.id.desc()),
    UserSort.EMAIL: (User.email.asc(), User.id.asc()),
    UserSort.EMAIL_DESC: (User.email.desc(), User.id.desc()),
}


def get_all(*, session: Session, page: PageRequest, sort: UserSort) -> Page[User]:
    """One page of users in `sort` order, ties broken by id so that pages never overlap."""
    query = select(User).order_by(*_ORDERINGS[sort])
    return fetch_page(session=session, query=query, page=page)
