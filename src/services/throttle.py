"""Rate limits on a shared budget: in memory by default, in Redis when several workers or
machines must share one (`limits` does the counting on either)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from taskapi.errors import TooManyRequestsError


@dataclass(frozen=True)
class Budget:
    """What is left of one limit for one key, for the IETF RateLimit headers."""

    limit: int
    remaining: int
    reset_after: int
    window: int


class Throttle:
    def __init__(self, storage_uri: str = "memory://") -> None:
        storage = storage_from_string(storage_uri)
        # Sliding windows for credentials (no burst at a window edge); fixed windows, cheaper,
        # for the general per-client limit.
        self._strict = MovingWindowRateLimiter(storage)
        self._cheap = FixedWindowRateLimiter(storage)

    def hit(self, limit: RateLimitItem, *key: str) -> None:
        """Count one attempt against `limit` for `key`; raise TooManyRequestsError past it."""
        if not self._strict.hit(limit, *key):
            reset_at, _ = self._strict.get_window_stats(limit, *key)
            raise TooManyRequestsError(
                "Too many attempts; try again later.", retry_after=_seconds_until(reset_at)
            )

    def spend(self, limit: RateLimitItem, *key: str) -> Budget:
        """Count one request against `limit`; the budget left (remaining 0 and refused when
        the request is over the limit: check `allowed`)."""
        allowed = self._cheap.hit(limit, *key)
        reset_at, remaining = self._cheap.get_window_stats(limit, *key)
        return Budget(
            limit=limit.amount,
            remaining=remaining if allowed else -1,
            reset_after=_seconds_until(reset_at),
            window=limit.get_expiry(),
        )


def rate_limit(text: str) -> RateLimitItem:
    return parse(text)


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))
