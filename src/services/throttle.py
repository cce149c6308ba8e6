"""Rate limits on a shared budget: in memory by default, in Redis when several workers or
machines must share one (`limits` does the counting on either)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse, parse_many
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

    def wait_for(self, limits: Sequence[RateLimitItem], *key: str) -> int:
        """Seconds until `key` may be counted again under every one of `limits` (0: now),
        without counting anything."""
        waits = [
            _seconds_until(self._strict.get_window_stats(limit, *key).reset_time)
            for limit in limits
            if not self._strict.test(limit, *key)
        ]
        return max(waits, default=0)

    def has_counted(self, limit: RateLimitItem, *key: str) -> bool:
        """Whether anything was counted for `key` within `limit`'s window."""
        return self._strict.get_window_stats(limit, *key).remaining < limit.amount

    def count(self, limits: Sequence[RateLimitItem], *key: str) -> None:
        """Count one event for `key` under each of `limits` (past a limit it stays full)."""
        for limit in limits:
            self._strict.hit(limit, *key)

    def forget(self, limits: Sequence[RateLimitItem], *key: str) -> None:
        """Drop what was counted for `key` under each of `limits`."""
        for limit in limits:
            self._strict.clear(limit, *key)

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


def rate_limits(text: str) -> tuple[RateLimitItem, ...]:
    """Several limits in one setting, such as "5/minute;20/hour", longest window last."""
    return tuple(sorted(parse_many(text), key=lambda limit: limit.get_expiry()))


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


def client_bucket(address: str) -> str:
    """The key a client address is counted under: IPv4 addresses one by one, IPv6 by /64
    (one subscriber usually holds a whole /64, so counting its addresses one by one would
    give it 2**64 budgets). Anything that is not an address (a test client) is its own key."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
