"""User accounts: registration and reads. Knows nothing of HTTP; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import UnaryExpression, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapi.errors import ConflictError, InvalidFieldError, NotFoundError, PermissionDeniedError
from taskapi.models import RefreshToken, Role, User
from taskapi.models.base import utc_now
from taskapi.services import audit
from taskapi.services.pagination import Page, PageRequest, fetch_page
from taskapi.services.passwords import Passwords, check_policy
from taskapi.services.patches import MergePatch
from taskapi.services.throttle import client_bucket

if TYPE_CHECKING:
    from taskapi.services.auth import AuthPolicy, Caller


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


class UserUpdate(MergePatch):
    """A merge patch of the caller's own account (the spec allows no nulls in it)."""

    noun = "Users"
    fields = frozenset({"name", "age", "password", "current_password"})


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register(*, session: Session, policy: AuthPolicy, user_in: UserCreate, client: str) -> User:
    """Register a user with the `user` role, within the per-address registration limit
    (TooManyRequestsError past it); otherwise as `create`."""
    policy.throttle.hit(
        policy.registration_limit_per_client, "register-client", client_bucket(client)
    )
    user = create(session=session, passwords=policy.passwords, user_in=user_in)
    audit.record("user.registered", outcome="success", actor=str(user.id), client=client)
    return user


def create(
    *, session: Session, passwords: Passwords, user_in: UserCreate, role: Role = Role.USER
) -> User:
    """Create a user, with the `user` role unless told otherwise (only `taskapi create-admin`
    does; no API input can choose a role).

    The password must pass the policy (InvalidFieldError saying why not). The email is stored
    normalised and the name trimmed; the password only as an argon2id hash, computed before
    the first statement of the unit of work, so before it takes any write lock. Raises
    ConflictError when the email is taken, whatever its case, including by a concurrent
    registration that commits first.
    """
    check_policy(user_in.password, field="password", email=user_in.email, name=user_in.name)
    user = User(
        email=normalise_email(user_in.email),
        name=user_in.name.strip(),
        age=user_in.age,
        role=role.value,
        password_hash=passwords.hash(user_in.password),
    )
    try:
        # The savepoint keeps the outer transaction usable if the unique constraint fires.
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise ConflictError("A user with this email already exists.") from None
    return user


def get(*, session: Session, actor: Caller, user_id: str) -> User:
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


class UserView(Protocol):
    """A user as replies show it, whether a mapped `User` or a row read without the ORM."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def age(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


# Listings are read as rows of the table, not as mapped objects: nothing in them is changed, so
# the unit of work has nothing to track (and the password hash is never read).
_USERS = User.__table__.c
_USER_VIEW = select(
    _USERS.id,
    _USERS.email,
    _USERS.name,
    _USERS.age,
    _USERS.role,
    _USERS.created_at,
    _USERS.updated_at,
)
_ORDERINGS: dict[UserSort, tuple[UnaryExpression[Any], ...]] = {
    UserSort.CREATED_AT: (_USERS.created_at.asc(), _USERS.id.asc()),
    UserSort.CREATED_AT_DESC: (_USERS.created_at.desc(), _USERS.id.desc()),
    UserSort.EMAIL: (_USERS.email.asc(), _USERS.id.asc()),
    UserSort.EMAIL_DESC: (_USERS.email.desc(), _USERS.id.desc()),
}


def get_all(
    *, session: Session, actor: Caller, page: PageRequest, sort: UserSort
) -> Page[UserView]:
    """One page of users in `sort` order, ties broken by id so that pages never overlap.
    Admins only: raises PermissionDeniedError for anyone else."""
    _require_admin(actor)
    return fetch_page(session=session, query=_USER_VIEW.order_by(*_ORDERINGS[sort]), page=page)


def update(
    *, session: Session, policy: AuthPolicy, user: User, changes: UserUpdate, client: str
) -> User:
    """Apply a merge patch to the caller's own account.

    A new password needs the current one, checked through the credential throttle
    (InvalidFieldError when missing or wrong, TooManyRequestsError while throttled), must
    pass the policy, and ends every session of the user: access and refresh tokens alike.
    """
    name, age, password = changes.get("name"), changes.get("age"), changes.get("password")
    if name is not None:
        user.name = name.strip()
    if age is not None:
        user.age = age
    if password is not None:
        current_password = changes.get("current_password")
        if current_password is None:
            raise InvalidFieldError(
                "A new password needs the current one.", field="current_password"
            )
        check_current_password(policy=policy, user=user, password=current_password, client=client)
        check_policy(password, field="password", email=user.email, name=user.name)
        user.password_hash = policy.passwords.hash(password)
        _revoke_all_tokens(session=session, user=user)
        audit.record("user.password_changed", outcome="success", actor=str(user.id), client=client)
    session.flush()
    return user


def delete_own_account(
    *, session: Session, policy: AuthPolicy, user: User, current_password: str, client: str
) -> None:
    """Delete the caller's account and everything it owns, once the current password is
    checked (through the credential throttle, as for a password change)."""
    check_current_password(policy=policy, user=user, password=current_password, client=client)
    session.delete(user)
    session.flush()
    audit.record("user.deleted", outcome="success", actor=str(user.id), client=client)


def delete(*, session: Session, actor: Caller, user_id: str) -> None:
    """Delete another user and everything it owns (tasks, tokens): admins only (users delete
    their own account with `delete_own_account`, which asks for the password)."""
    _require_admin(actor)
    target = _find(session=session, user_id=user_id)
    session.delete(target)
    session.flush()
    audit.record("admin.user_deleted", outcome="success", actor=str(actor.id), target=user_id)


def check_current_password(*, policy: AuthPolicy, user: User, password: str, client: str) -> None:
    """Raise InvalidFieldError when `password` is not the user's, counting the failure on the
    credential throttle (the one in front of login too)."""
    policy.credentials.check(account=user.email, client=client)
    if not policy.passwords.verify(user.password_hash, password):
        policy.credentials.failed(account=user.email, client=client)
        audit.record("user.current_password", outcome="failure", actor=str(user.id), client=client)
        raise InvalidFieldError("The current password is wrong.", field="current_password")
    policy.credentials.succeeded(account=user.email, client=client)


def promote_to_admin(*, session: Session, email: str) -> User:
    """Give the account with this email the admin role (the command line's job, never the API's)."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFoundError("No user has this email.")
    user.role = Role.ADMIN.value
    session.flush()
    return user


def _require_admin(actor: Caller) -> None:
    if actor.role != Role.ADMIN:
        raise PermissionDeniedError("Only admins may do this.")


def _revoke_all_tokens(*, session: Session, user: User) -> None:
    user.token_version += 1  # every access token carries the version it was issued under
    session.execute(
        sql_update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utc_now())
    )
