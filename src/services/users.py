"""User accounts: registration and reads. Knows nothing of HTTP; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import UnaryExpression, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapi.errors import ConflictError, InvalidFieldError, NotFoundError, PermissionDeniedError
from taskapi.models import RefreshToken, Role, User
from taskapi.models.base import utc_now
from taskapi.services.pagination import Page, PageRequest, fetch_page
from taskapi.services.passwords import hash_password, verify_password


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


@dataclass(frozen=True, kw_only=True)
class UserUpdate:
    """A merge patch of the caller's own account; absent fields stay as they are."""

    name: str | None = None
    age: int | None = None
    password: str | None = None
    current_password: str | None = None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create(*, session: Session, user_in: UserCreate, role: Role = Role.USER) -> User:
    """Register a user, with the `user` role unless told otherwise (only `taskapi create-admin`
    does; no API input can choose a role).

    The email is stored normalised and the name trimmed; the password only as an argon2id hash.
    Raises ConflictError when the email is taken, whatever its case, including by a concurrent
    registration that commits first.
    """
    user = User(
        email=normalise_email(user_in.email),
        name=user_in.name.strip(),
        age=user_in.age,
        role=role.value,
        password_hash=hash_password(user_in.password),
    )
    try:
        # The savepoint keeps the outer transaction usable if the unique constraint fires.
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise ConflictError("A user with this email already exists.") from None
    return user


def get(*, session: Session, actor: User, user_id: str) -> User:
    """The user with this public id, if `actor` may read it: themselves, or anyone for admins.

    Raises PermissionDeniedError for another user's id (whether it exists or not, so that users
    cannot probe ids) and NotFoundError for an unknown or malformed id asked by an admin.
    """
    if actor.role != Role.ADMIN and user_id != str(actor.id):
        raise PermissionDeniedError("Only admins may read other users.")
    return _find(session=session, user_id=user_id)


def _find(*, session: Session, user_id: str) -> User:
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


def get_all(*, session: Session, actor: User, page: PageRequest, sort: UserSort) -> Page[User]:
    """One page of users in `sort` order, ties broken by id so that pages never overlap.
    Admins only: raises PermissionDeniedError for anyone else."""
    _require_admin(actor)
    query = select(User).order_by(*_ORDERINGS[sort])
    return fetch_page(session=session, query=query, page=page)


def update(*, session: Session, user: User, changes: UserUpdate) -> User:
    """Apply a merge patch to the caller's own account.

    A new password needs the current one (InvalidFieldError otherwise) and revokes every token
    the user holds, access and refresh alike.
    """
    if changes.name is not None:
        user.name = changes.name.strip()
    if changes.age is not None:
        user.age = changes.age
    if changes.password is not None:
        if changes.current_password is None:
            raise InvalidFieldError(
                "A new password needs the current one.", field="current_password"
            )
        if not verify_password(user.password_hash, changes.current_password):
            raise InvalidFieldError("The current password is wrong.", field="current_password")
        user.password_hash = hash_password(changes.password)
        _revoke_all_tokens(session=session, user=user)
    session.flush()
    return user


def delete(*, session: Session, actor: User, user_id: str) -> None:
    """Delete a user and everything it owns (tasks, tokens). Admins may delete anyone;
    users only themselves."""
    if actor.role != Role.ADMIN and user_id != str(actor.id):
        raise PermissionDeniedError("Only admins may delete other users.")
    session.delete(_find(session=session, user_id=user_id))
    session.flush()


def promote_to_admin(*, session: Session, email: str) -> User:
    """Give the account with this email the admin role (the command line's job, never the API's)."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFoundError("No user has this email.")
    user.role = Role.ADMIN.value
    session.flush()
    return user


def _require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN:
        raise PermissionDeniedError("Only admins may do this.")


def _revoke_all_tokens(*, session: Session, user: User) -> None:
    user.token_version += 1  # every access token carries the version it was issued under
    session.execute(
        sql_update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )
