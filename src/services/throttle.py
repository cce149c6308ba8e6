"""Rate limits on a shared budget: in memory by default, in Redis when several workers or
machines must share one (`limits` does the counting; in memory, on `memory_budgets`, a store whose
expiry costs bounded work).

What happens when the store fails is decided here and nowhere else:

- every call to Redis has a deadline (`timeout_ms`, for connecting and for each reply), and
  is never retried within a request;
- a failure leaves the store alone for `cooldown` seconds: calls in that time fail at once
  instead of each waiting for its deadline, and the first call after it tries Redis again, so
  the throttle recovers by itself;
- `hit` and the credential throttle's `wait_for`, `has_counted`, `count` and `forget`
  (credential limits: every password check, refresh, registration) fail closed: they raise
  ServiceUnavailableError, answered 503 with Retry-After, since an attacker must not gain
  unlimited guesses by taking Redis down;
- `spend` (the general per-client limit) fails open: it returns None and the request goes on,
  since refusing every request would turn a Redis outage into a full one.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse, parse_many
from limits.errors import StorageError
from limits.storage import Storage, StorageTypes, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from taskapi.errors import ServiceUnavailableError, TooManyRequestsError
from taskapi.services.memory_budgets import SweptMemoryStorage

logger = logging.getLogger(__name__)

STORE_TIMEOUT_MS = 200
STORE_COOLDOWN_SECONDS = 1.0
STORE_RETRY_AFTER_SECONDS = 5
STORE_UNAVAILABLE_DETAIL = "Rate limits cannot be checked now; try again shortly."
# Threads that wait on Redis for the event loop (`spend_soon`): each reply takes a fraction of
# a millisecond, and during an outage the cooldown answers without waiting.
_STORE_THREADS = 4


class StoreUnavailableError(Exception):
    """The shared store did not answer within its deadline, or is in its cooldown."""


@dataclass(frozen=True)
class Budget:
    """What is left of one limit for one key, for the IETF RateLimit headers."""

    limit: int
    remaining: int
    reset_after: int
    window: int


class Throttle:
    def __init__(
        self,
        storage_uri: str = "memory://",
        *,
        timeout_ms: int = STORE_TIMEOUT_MS,
        cooldown: float = STORE_COOLDOWN_SECONDS,
    ) -> None:
        options: dict[str, Any] = {}
        if not storage_uri.startswith("memory://"):
            seconds = timeout_ms / 1000
            options = {
                "socket_connect_timeout": seconds,
                "socket_timeout": seconds,
                # Once, at once, on a connection found dead (Redis restarted while it idled
                # in the pool); never after a timeout, which would double the wait.
                "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                "retry_on_timeout": False,
            }
        storage: StorageTypes = (
            SweptMemoryStorage(wrap_exceptions=True)
            if storage_uri.startswith("memory://")
            else storage_from_string(storage_uri, wrap_exceptions=True, **options)
        )
        if not isinstance(storage, Storage):  # a memory:// or redis:// URI: never async://
            raise ValueError(f"not a synchronous store: {storage_uri}")
        self._storage = storage
        self._memory = storage if isinstance(storage, SweptMemoryStorage) else None
        # Sliding windows for credentials (no burst at a window edge); fixed windows, cheaper,
        # for the general per-client limit (`spend`, counted on the store itself).
        self._strict = MovingWindowRateLimiter(storage)
        self._cooldown = cooldown
        # How long `spend_soon` waits at most: a connect and a reply, and a little for a thread.
        self._deadline = 2 * timeout_ms / 1000 + 0.1
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._threads = (
            None
            if self._memory is not None
            else ThreadPoolExecutor(_STORE_THREADS, thread_name_prefix="throttle")
        )

    def hit(self, limit: RateLimitItem, *key: str) -> None:
        """Count one attempt against `limit` for `key`; raise TooManyRequestsError past it,
        and ServiceUnavailableError when the store cannot say (fails closed)."""
        with self._credential_store():
            if self._strict.hit(limit, *key):
                return
            reset_at, _ = self._strict.get_window_stats(limit, *key)
        raise TooManyRequestsError(
            "Too many attempts; try again later.", retry_after=_seconds_until(reset_at)
        )

    def wait_for(self, limits: Sequence[RateLimitItem], *key: str) -> int:
        """Seconds until `key` may be counted again under every one of `limits` (0: now),
        without counting anything. Fails closed, as `hit` does."""
        with self._credential_store():
            waits = [
                _seconds_until(self._strict.get_window_stats(limit, *key).reset_time)
                for limit in limits
                if not self._strict.test(limit, *key)
            ]
        return max(waits, default=0)

    def has_counted(self, limit: RateLimitItem, *key: str) -> bool:
        """Whether anything was counted for `key` within `limit`'s window (fails closed)."""
        with self._credential_store():
            return self._strict.get_window_stats(limit, *key).remaining < limit.amount

    def count(self, limits: Sequence[RateLimitItem], *key: str) -> None:
        """Count one event for `key` under each of `limits` (past a limit it stays full);
        fails closed."""
        with self._credential_store():
            for limit in limits:
                self._strict.hit(limit, *key)

    def forget(self, limits: Sequence[RateLimitItem], *key: str) -> None:
        """Drop what was counted for `key` under each of `limits` (fails closed)."""
        with self._credential_store():
            for limit in limits:
                self._strict.clear(limit, *key)

    def spend(self, limit: RateLimitItem, *key: str) -> Budget | None:
        """Count one request against `limit`; the budget left (remaining -1 when the request
        is over the limit), or None when the store cannot say (fails open)."""
        # A fixed window, as limits' FixedWindowRateLimiter counts it, in two calls to the
        # store rather than its three (its `hit` and then `get_window_stats` read the count
        # back): the increment answers the count, and a round trip to Redis is saved.
        window_key, window = limit.key_for(*key), limit.get_expiry()
        if self._memory is not None:  # nothing to fail: no deadline, no cooldown
            counted, reset_at = self._memory.count(window_key, window)
        else:
            try:
                with self._store():
                    counted = self._storage.incr(window_key, window)
                    reset_at = self._storage.get_expiry(window_key)
            except StoreUnavailableError:
                return None
        return Budget(
            limit=limit.amount,
            remaining=limit.amount - counted if counted <= limit.amount else -1,
            reset_after=_seconds_until(reset_at),
            window=window,
        )

    async def spend_soon(self, limit: RateLimitItem, *key: str) -> Budget | None:
        """`spend` for the event loop: a call to Redis runs on a thread of the throttle's
        own, and is given up (None) past its deadline; memory answers in place."""
        if self._threads is None:
            return self.spend(limit, *key)
        # In the request's context, so that a trace of the request includes the Redis call.
        in_context = functools.partial(contextvars.copy_context().run, self.spend, limit, *key)
        waiting = asyncio.get_running_loop().run_in_executor(self._threads, in_context)
        try:
            return await asyncio.wait_for(waiting, self._deadline)
        except TimeoutError:
            self._fail("no answer within the deadline")
            return None

    def check(self) -> None:
        """Return when the store answers a ping in time; raise StoreUnavailableError if not."""
        with self._store(during_cooldown=True):
            if not self._storage.check():
                raise StorageError(ConnectionError("no answer to PING"))

    @property
    def redis_client(self) -> Any | None:
        """The Redis client under the store, when the store is Redis (to trace its calls)."""
        return None if self._threads is None else getattr(self._storage, "storage", None)

    @property
    def shared(self) -> bool:
        """Whether the budget lives in a store other processes share (Redis)."""
        return self._threads is not None

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)

    @contextmanager
    def _credential_store(self) -> Iterator[None]:
        """A block that talks to the store for a credential limit: when the store cannot say,
        ServiceUnavailableError (503), never a free pass."""
        try:
            with self._store():
                yield
        except StoreUnavailableError:
            raise ServiceUnavailableError(
                STORE_UNAVAILABLE_DETAIL, retry_after=STORE_RETRY_AFTER_SECONDS, dependency="redis"
            ) from None

    @contextmanager
    def _store(self, *, during_cooldown: bool = False) -> Iterator[None]:
        """A block that talks to the store: refused during the cooldown, and starting one
        when the store fails."""
        if not during_cooldown and time.monotonic() < self._down_until:
            raise StoreUnavailableError
        try:
            yield
        except StorageError as error:
            self._fail(f"{type(error.storage_error).__name__}: {error.storage_error}")
            raise StoreUnavailableError from error
        self._recover()

    def _fail(self, why: str) -> None:
        with self._lock:
            was_up = time.monotonic() >= self._down_until
            self._down_until = time.monotonic() + self._cooldown
        if was_up:
            logger.warning(
                "rate-limit store unavailable: the general limit is not applied and "
                "credential limits answer 503 until it is back",
                extra={"error": why},
            )

    def _recover(self) -> None:
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            logger.info("rate-limit store available again")


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
