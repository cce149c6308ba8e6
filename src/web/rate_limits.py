"""The general per-client rate limit on every route, with the IETF RateLimit headers.

Login and refresh have stricter limits of their own, applied by `taskapi.services.auth`. When
the limit's store does not answer, the request goes on without it (taskapi.services.throttle
says why), counted in `taskapi_rate_limit_unchecked_total`. `taskapi.web.edge` asks it about
each request and adds its headers to the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from limits import RateLimitItem
from starlette.types import Scope, Send

from taskapi.services.throttle import Throttle
from taskapi.web.metrics import Metrics
from taskapi.web.outcome import note_dependency_failure
from taskapi.web.problems import TOO_MANY_REQUESTS, send_problem

POLICY_NAME = "default"
RawHeaders = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Admission:
    """The limit's word on one request: the headers its answer carries, and when it is refused,
    the seconds until the client's budget refills."""

    headers: RawHeaders = ()
    refused_for: int | None = None


# Exempt paths, and requests let through while the store does not answer: no headers.
UNCOUNTED = Admission()


class RateLimit:
    def __init__(
        self,
        *,
        throttle: Throttle,
        limit: RateLimitItem,
        metrics: Metrics,
        exempt_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.throttle = throttle
        self.metrics = metrics
        self.limit = limit
        self.exempt_paths = exempt_paths
        self.policy_header = f'"{POLICY_NAME}";q={limit.amount};w={limit.get_expiry()}'.encode()

    async def admit(self, scope: Scope) -> Admission:
        """Spends one request of the client's budget."""
        if scope["path"] in self.exempt_paths:
            return UNCOUNTED
        client = scope.get("client")
        budget = await self.throttle.spend_soon(
            self.limit, "client", client[0] if client else "unknown"
        )
        if budget is None:
            self.metrics.rate_limit_unchecked.inc()
            note_dependency_failure("redis")
            return UNCOUNTED
        headers = (
            (b"ratelimit-policy", self.policy_header),
            (
                b"ratelimit",
                f'"{POLICY_NAME}";r={max(budget.remaining, 0)};t={budget.reset_after}'.encode(),
            ),
        )
        refused_for = budget.reset_after if budget.remaining < 0 else None
        return Admission(headers, refused_for)

    @staticmethod
    async def refuse(scope: Scope, send: Send, refused_for: int, headers: RawHeaders) -> None:
        """The 429 for a request `admit` refused, with its RateLimit headers."""
        await send_problem(
            send,
            TOO_MANY_REQUESTS,
            f"Too many requests; try again in {refused_for} seconds.",
            instance=scope["path"],
            headers={"Retry-After": str(refused_for)},
            raw_headers=headers,
        )
