"""Access tokens (short-lived JWTs) and refresh tokens (opaque random strings)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from taskapi.errors import AuthenticationError

# Pinned: a token whose header names any other algorithm (`none` included) is refused.
ALGORITHM = "HS256"
REFRESH_TOKEN_PREFIX = "rt_"


@dataclass(frozen=True, kw_only=True)
class AccessClaims:
    user_id: str
    token_version: int
    # The login session (refresh-token family) the token belongs to; ending it ends the token.
    session_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class TokenIssuer:
    secret: str
    issuer: str
    audience: str
    access_ttl: timedelta
    refresh_ttl: timedelta

    def issue_access_token(
        self, *, user_id: str, token_version: int, session_id: uuid.UUID, now: datetime
    ) -> str:
        claims = {
            "sub": user_id,
            "ver": token_version,
            "sid": str(session_id),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def read_access_token(self, token: str) -> AccessClaims:
        """The claims of a valid token. Raises AuthenticationError saying why it is not valid."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["sub", "ver", "sid", "iss", "aud", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired.") from None
        except jwt.InvalidTokenError:
            raise AuthenticationError("The token is not valid.") from None
        try:
            if not isinstance(claims["sub"], str) or not isinstance(claims["ver"], int):
                raise ValueError
            session_id = uuid.UUID(str(claims["sid"]))
        except ValueError:
            raise AuthenticationError("The token is not valid.") from None
        return AccessClaims(
            user_id=claims["sub"], token_version=claims["ver"], session_id=session_id
        )

    def successor_of(self, refresh_token: str) -> str:
        """The refresh token that replaces `refresh_token`: derived, not drawn, so that the
        same token presented again within the grace window gets the same successor back.
        Without the secret, a used token says nothing about its successor."""
        digest = hmac.new(
            self.secret.encode(), b"refresh-successor:" + refresh_token.encode(), "sha256"
        ).digest()
        return REFRESH_TOKEN_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # Refresh tokens carry 256 random bits, so a fast hash is enough (no need for argon2).
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
