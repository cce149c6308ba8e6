"""The general per-client rate limit on every route, with the IETF RateLimit headers.

Login and refresh have stricter limits of their own, applied by `taskapi.services.auth`. When
the limit's store does not answer, the request goes on without it (taskapi.services.throttle
says why), counted in `taskapi_rate_limit_unchecked_total`.
"""

from __future__ import annotations

from limits import RateLimitItem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskapi.services.throttle import Budget, Throttle
from taskapi.web.metrics import Metrics
from taskapi.web.outcome import note_dependency_failure
from taskapi.web.problems import TOO_MANY_REQUESTS, send_problem

POLICY_NAME = "default"


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        throttle: Throttle,
        limit: RateLimitItem,
        metrics: Metrics,
        exempt_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.throttle = throttle
        self.metrics = metrics
        self.limit = limit
        self.exempt_paths = exempt_paths
        self.policy_header = f'"{POLICY_NAME}";q={limit.amount};w={limit.get_expiry()}'.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        budget = await self.throttle.spend_soon(
            self.limit, "client", client[0] if client else "unknown"
        )
        if budget is None:
            self.metrics.rate_limit_unchecked.inc()
            note_dependency_failure("redis")
            await self.app(scope, receive, send)
            return
        headers = self._headers(budget)
        if budget.remaining < 0:
            await self._refuse(scope, send, budget, headers)
            return

        async def send_with_budget(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_budget)

    def _headers(self, budget: Budget) -> list[tuple[bytes, bytes]]:
        remaining = max(budget.remaining, 0)
        return [
            (b"ratelimit-policy", self.policy_header),
            (b"ratelimit", f'"{POLICY_NAME}";r={remaining};t={budget.reset_after}'.encode()),
        ]

    @staticmethod
    async def _refuse(
        scope: Scope, send: Send, budget: Budget, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await send_problem(
            send,
            TOO_MANY_REQUESTS,
            f"Too many requests; try again in {budget.reset_after} seconds.",
            instance=scope["path"],
            headers={"Retry-After": str(budget.reset_after)},
            raw_headers=headers,
        )
