"""Logging in, refreshing and revoking tokens, and knowing who a token belongs to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from limits import RateLimitItem
from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session

from taskapi.errors import AuthenticationError, StolenTokenError
from taskapi.models import RefreshToken, User
from taskapi.services import audit
from taskapi.services.credential_throttle import CredentialThrottle
from taskapi.services.passwords import Passwords
from taskapi.services.throttle import Throttle, client_bucket
from taskapi.services.tokens import AccessClaims, TokenIssuer, hash_refresh_token, new_refresh_token
from taskapi.services.users import normalise_email
from taskapi.statements import first_row


@dataclass(frozen=True, kw_only=True)
class AuthPolicy:
    """Everything authentication needs besides the database, built once at start-up."""

    tokens: TokenIssuer
    throttle: Throttle
    credentials: CredentialThrottle
    passwords: Passwords
    refresh_limit_per_client: RateLimitItem
    registration_limit_per_client: RateLimitItem
    # A used refresh token presented again this soon, from the same client, is a race (two
    # tabs refreshing at once), not a theft: it gets the pair already issued.
    refresh_grace: timedelta


@dataclass(frozen=True, kw_only=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a verified access token speaks for: what requests need of the account to decide
    what it may do. Handlers that change or show the account itself load it (`account`)."""

    id: uuid.UUID
    role: str


_BAD_CREDENTIALS = "The email or password is wrong."
_BAD_REFRESH_TOKEN = "The refresh token is not valid."


def login(
    *, session: Session, policy: AuthPolicy, email: str, password: str, client: str
) -> TokenPair:
    """Tokens for the account with this email and password.

    Failed checks are limited by the credential throttle. A wrong email and a wrong password
    raise the same AuthenticationError after the same amount of work.
    """
    email = normalise_email(email)
    policy.credentials.check(account=email, client=client)
    user = session.scalar(select(User).where(User.email == email))
    if not policy.passwords.verify(user.password_hash if user else None, password) or user is None:
        policy.credentials.failed(account=email, client=client)
        audit.record("login", outcome="failure", account=email, client=client)
        raise AuthenticationError(_BAD_CREDENTIALS)
    # Locked (PostgreSQL) only now, after the slow check, so that a deletion of the account
    # waits for the login to finish rather than leave it a token to insert for a user that is
    # gone; and checked again, since the password may have changed meanwhile.
    verified_hash = user.password_hash
    user = _locked_user(session, user.id)
    if user is None or user.password_hash != verified_hash:
        raise AuthenticationError(_BAD_CREDENTIALS)
    policy.credentials.succeeded(account=email, client=client)
    if policy.passwords.needs_rehash(user.password_hash):
        user.password_hash = policy.passwords.hash(password)
    audit.record("login", outcome="success", actor=str(user.id), client=client)
    return _issue_pair(
        session=session,
        policy=policy,
        user=user,
        family_id=uuid.uuid4(),
        refresh_token=new_refresh_token(),
    )


def refresh(*, session: Session, policy: AuthPolicy, refresh_token: str, client: str) -> TokenPair:
    """A new pair for a refresh token, which is used up.

    The same token presented again by the same client within the grace window gets the same
    refresh token back (and a fresh access token of the same session). Later, or from another
    client, it revokes its whole family (StolenTokenError): one of the two presenters stole it,
    and we cannot tell which.
    """
    policy.throttle.hit(policy.refresh_limit_per_client, "refresh-client", client_bucket(client))
    now = datetime.now(UTC)
    token_hash = hash_refresh_token(refresh_token)
    owner_id = session.scalar(
        select(RefreshToken.user_id).where(RefreshToken.token_hash == token_hash)
    )
    # The user's row first, then the token's: the order every unit of work takes them in
    # (deleting a user locks it, then cascades to its tokens), so none can deadlock another.
    user = None if owner_id is None else _locked_user(session, owner_id)
    stored = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    )
    if user is None or stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        raise AuthenticationError(_BAD_REFRESH_TOKEN)
    successor = policy.tokens.successor_of(refresh_token)
    if stored.used_at is None:
        stored.used_at, stored.used_by = now, client_bucket(client)
        return _issue_pair(
            session=session,
            policy=policy,
            user=user,
            family_id=stored.family_id,
            refresh_token=successor,
        )
    if _within_grace(stored, policy=policy, client=client, now=now):
        return _pair(policy=policy, user=user, family_id=stored.family_id, refresh_token=successor)
    _revoke_family(session=session, family_id=stored.family_id, now=now)
    audit.record("refresh.reuse", outcome="family_revoked", actor=str(user.id), client=client)
    raise StolenTokenError("The refresh token was already used; its family is revoked.")


def _within_grace(stored: RefreshToken, *, policy: AuthPolicy, client: str, now: datetime) -> bool:
    assert stored.used_at is not None
    return stored.used_by == client_bucket(client) and now - stored.used_at <= policy.refresh_grace


def logout(*, session: Session, caller: Caller, claims: AccessClaims, refresh_token: str) -> None:
    """End the caller's session (its access tokens stop working at once) and the one the
    refresh token belongs to. Unknown tokens are ignored, so logging out twice is harmless."""
    now = datetime.now(UTC)
    stored = session.scalar(
        select(RefreshToken).where(
            RefreshToken.token_hash == hash_refresh_token(refresh_token),
            RefreshToken.user_id == caller.id,
        )
    )
    families = {claims.session_id} | ({stored.family_id} if stored is not None else set())
    for family_id in families:
        _revoke_family(session=session, family_id=family_id, now=now)
    audit.record("logout", outcome="success", actor=str(caller.id))


# Built once, on the table rather than the mapped class: this runs on every authenticated
# request (docs/deployment.md, "Sessions"), and the rows it reads need no unit of work to track
# them, so neither its compilation nor its result goes through the ORM. The session id is a
# random UUID bound to the user inside the signed token, so the family alone identifies it,
# and the first of its rows that is not revoked answers.
_USERS, _REFRESH_TOKENS = User.__table__.c, RefreshToken.__table__.c
# The token's user, at the token's version, with the token's session not ended.
_LIVE_SESSION = (
    _USERS.id == bindparam("user_id"),
    _USERS.token_version == bindparam("version"),
    exists().where(
        _REFRESH_TOKENS.family_id == bindparam("session_id"),
        _REFRESH_TOKENS.revoked_at.is_(None),
    ),
)
_CALLER_OF_LIVE_SESSION = select(_USERS.id, _USERS.role).where(*_LIVE_SESSION)
_CALLER_OF_LIVE_SESSION_FOR_WRITING = _CALLER_OF_LIVE_SESSION.with_for_update(
    read=True, key_share=True
)


def authenticate(*, session: Session, claims: AccessClaims, for_writing: bool = False) -> Caller:
    """Who a verified access token speaks for. Raises AuthenticationError when the user is
    gone, changed their password since, or the token's session has ended (logout, reuse of a
    refresh token): one indexed query, the same one that reads the caller.

    `for_writing` locks the user's row (PostgreSQL) until the unit of work ends: a deletion
    of the account then waits for it, and a unit of work that starts after the deletion
    finds no user (401), so nothing is written for an account that is gone. The lock is FOR
    KEY SHARE, the one a deletion conflicts with, so the account's other writers do not wait
    for each other on it."""
    found = first_row(
        session,
        _CALLER_OF_LIVE_SESSION_FOR_WRITING if for_writing else _CALLER_OF_LIVE_SESSION,
        _live_session_of(claims),
    )
    if found is None:
        raise AuthenticationError("The token has been revoked.")
    return Caller(found.id, found.role)


def account(*, session: Session, claims: AccessClaims, for_writing: bool = False) -> User:
    """The account a verified access token speaks for, mapped, to show or change it: the
    checks of `authenticate`, in one query that loads the account.

    `for_writing` locks the row FOR NO KEY UPDATE (PostgreSQL), the lock a change of the account
    takes: two changes of one account (a password change and a deletion) take turns, and the one
    that waited finds the token its request carries revoked (401) instead of acting on an
    account changed under it."""
    user = session.scalar(
        _ACCOUNT_OF_LIVE_SESSION_FOR_WRITING if for_writing else _ACCOUNT_OF_LIVE_SESSION,
        _live_session_of(claims),
    )
    if user is None:
        raise AuthenticationError("The token has been revoked.")
    return user


def _live_session_of(claims: AccessClaims) -> dict[str, Any]:
    """The parameters of `_LIVE_SESSION` for a verified token's claims."""
    try:
        user_id = uuid.UUID(claims.user_id)
    except ValueError:
        raise AuthenticationError("The token has been revoked.") from None
    return {"user_id": user_id, "version": claims.token_version, "session_id": claims.session_id}


_ACCOUNT_OF_LIVE_SESSION = select(User).where(*_LIVE_SESSION)
_ACCOUNT_OF_LIVE_SESSION_FOR_WRITING = _ACCOUNT_OF_LIVE_SESSION.with_for_update(key_share=True)


def _locked_user(session: Session, user_id: uuid.UUID) -> User | None:
    """The user's row as it is now, locked until the unit of work ends (PostgreSQL)."""
    return session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def _revoke_family(*, session: Session, family_id: uuid.UUID, now: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _issue_pair(
    *, session: Session, policy: AuthPolicy, user: User, family_id: uuid.UUID, refresh_token: str
) -> TokenPair:
    now = datetime.now(UTC)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_refresh_token(refresh_token),
            created_at=now,
            expires_at=now + policy.tokens.refresh_ttl,
        )
    )
    session.flush()
    return _pair(policy=policy, user=user, family_id=family_id, refresh_token=refresh_token)


def _pair(*, policy: AuthPolicy, user: User, family_id: uuid.UUID, refresh_token: str) -> TokenPair:
    access_token = policy.tokens.issue_access_token(
        user_id=str(user.id),
        token_version=user.token_version,
        session_id=family_id,
        now=datetime.now(UTC),
    )
    return TokenPair(
        access_token=access_token,
        expires_in=int(policy.tokens.access_ttl.total_seconds()),
        refresh_token=refresh_token,
    )
