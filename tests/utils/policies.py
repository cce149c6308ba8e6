"""The authentication policy for service tests: the real one, with limits a test can reach."""

from __future__ import annotations

from datetime import timedelta

from taskapi.services.auth import AuthPolicy
from taskapi.services.credential_throttle import CredentialLimits, CredentialThrottle
from taskapi.services.throttle import Throttle, rate_limit, rate_limits
from taskapi.services.tokens import TokenIssuer

ISSUER = TokenIssuer(
    secret="a-test-secret-of-at-least-thirty-two-chars",
    issuer="taskapi",
    audience="taskapi",
    access_ttl=timedelta(minutes=15),
    refresh_ttl=timedelta(days=30),
)


def auth_policy(
    *,
    storage: str = "memory://",
    per_account_and_client: str = "3/minute;10/hour",
    per_client: str = "5/minute",
    per_account: str = "8/hour",
    refresh_per_client: str = "1000/minute",
    registration_per_client: str = "1000/minute",
    refresh_grace_seconds: int = 10,
) -> AuthPolicy:
    throttle = Throttle(storage)
    limits = CredentialLimits(
        per_account_and_client=rate_limits(per_account_and_client),
        per_client=rate_limits(per_client),
        per_account=rate_limits(per_account),
    )
    return AuthPolicy(
        tokens=ISSUER,
        throttle=throttle,
        credentials=CredentialThrottle(throttle, limits),
        refresh_limit_per_client=rate_limit(refresh_per_client),
        registration_limit_per_client=rate_limit(registration_per_client),
        refresh_grace=timedelta(seconds=refresh_grace_seconds),
    )
