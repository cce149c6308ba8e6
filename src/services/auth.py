"""Logging in, refreshing and revoking tokens, and knowing who a token belongs to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from limits import RateLimitItem
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from taskapi.errors import AuthenticationError, StolenTokenError
from taskapi.models import RefreshToken, User
from taskapi.services.passwords import hash_password, needs_rehash, verify_password
from taskapi.services.throttle import Throttle
from taskapi.services.tokens import AccessClaims, TokenIssuer, hash_refresh_token, new_refresh_token
from taskapi.services.users import normalise_email


@dataclass(frozen=True, kw_only=True)
class AuthPolicy:
    """Everything authentication needs besides the database, built once at start-up."""

    tokens: TokenIssuer
    throttle: Throttle
    login_limit_per_account: RateLimitItem
    login_limit_per_client: RateLimitItem


@dataclass(frozen=True, kw_only=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str


_BAD_CREDENTIALS = "The email or password is wrong."


def login(
    *, session: Session, policy: AuthPolicy, email: str, password: str, client: str
) -> TokenPair:
    """Tokens for the account with this email and password.

    Attempts are limited per account and per client address. A wrong email and a wrong password
    raise the same AuthenticationError after the same amount of work.
    """
    email = normalise_email(email)
    policy.throttle.hit(policy.login_limit_per_client, "login-client", client)
    policy.throttle.hit(policy.login_limit_per_account, "login-account", email)
    user = session.scalar(select(User).where(User.email == email))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise AuthenticationError(_BAD_CREDENTIALS)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return _issue_pair(session=session, policy=policy, user=user, family_id=uuid.uuid4())


def refresh(*, session: Session, policy: AuthPolicy, refresh_token: str, client: str) -> TokenPair:
    """A new pair for a refresh token, which is used up.

    A token presented a second time revokes its whole family (StolenTokenError): one of the
    two presenters stole it, and we cannot tell which.
    """
    policy.throttle.hit(policy.login_limit_per_client, "refresh-client", client)
    now = datetime.now(UTC)
    stored = session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
        .with_for_update()
    )
    if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        raise AuthenticationError("The refresh token is not valid.")
    if stored.used_at is not None:
        _revoke_family(session=session, family_id=stored.family_id, now=now)
        raise StolenTokenError("The refresh token was already used; its family is revoked.")
    stored.used_at = now
    user = session.get(User, stored.user_id)
    if user is None:  # pragma: no cover - tokens are deleted with their user (ON DELETE CASCADE)
        raise AuthenticationError("The refresh token is not valid.")
    return _issue_pair(session=session, policy=policy, user=user, family_id=stored.family_id)


def logout(*, session: Session, user: User, refresh_token: str) -> None:
    """Revoke the caller's refresh token and its family. Unknown tokens are ignored, so
    logging out twice is harmless."""
    stored = session.scalar(
        select(RefreshToken).where(
            RefreshToken.token_hash == hash_refresh_token(refresh_token),
            RefreshToken.user_id == user.id,
        )
    )
    if stored is not None:
        _revoke_family(session=session, family_id=stored.family_id, now=datetime.now(UTC))


def authenticate(*, session: Session, claims: AccessClaims) -> User:
    """The user a verified access token speaks for. Raises AuthenticationError when the user
    is gone or changed their password after the token was issued."""
    try:
        user = session.get(User, uuid.UUID(claims.user_id))
    except ValueError:
        user = None
    if user is None or user.token_version != claims.token_version:
        raise AuthenticationError("The token has been revoked.")
    return user


def _revoke_family(*, session: Session, family_id: uuid.UUID, now: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _issue_pair(
    *, session: Session, policy: AuthPolicy, user: User, family_id: uuid.UUID
) -> TokenPair:
    now = datetime.now(UTC)
    refresh_token = new_refresh_token()
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
    access_token = policy.tokens.issue_access_token(
        user_id=str(user.id), token_version=user.token_version, now=now
    )
    return TokenPair(
        access_token=access_token,
        expires_in=int(policy.tokens.access_ttl.total_seconds()),
        refresh_token=refresh_token,
    )
