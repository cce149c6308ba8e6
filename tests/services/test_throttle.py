"""Rate limits count the same in memory and in Redis (shared by every worker)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from taskapi.errors import ServiceUnavailableError, TooManyRequestsError
from taskapi.services.throttle import (
    STORE_RETRY_AFTER_SECONDS,
    Budget,
    StoreUnavailableError,
    Throttle,
    rate_limit,
)
from tests.utils.tcp_proxy import FAULTS, TcpProxy, proxied_redis


@pytest.fixture(params=["memory", "redis"])
def throttle(request: pytest.FixtureRequest) -> Iterator[Throttle]:
    if request.param == "memory":
        yield Throttle("memory://")
        return
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need TEST_REDIS_URL (make test sets it in CI)")
    yield Throttle(url)


def test_hit_refuses_past_the_limit_with_a_retry_delay(throttle: Throttle) -> None:
    limit, key = rate_limit("2/minute"), uuid.uuid4().hex
    throttle.hit(limit, "test", key)
    throttle.hit(limit, "test", key)

    with pytest.raises(TooManyRequestsError) as refused:
        throttle.hit(limit, "test", key)

    assert 0 < refused.value.retry_after <= 60


def test_keys_have_separate_budgets(throttle: Throttle) -> None:
    limit = rate_limit("1/minute")
    throttle.hit(limit, "test", uuid.uuid4().hex)

    throttle.hit(limit, "test", uuid.uuid4().hex)


def test_spend_reports_the_remaining_budget(throttle: Throttle) -> None:
    limit, key = rate_limit("2/minute"), uuid.uuid4().hex

    budgets = [throttle.spend(limit, "test", key) for _ in range(3)]

    assert [b.remaining for b in budgets] == [1, 0, -1]
    assert all(b.limit == 2 and b.window == 60 for b in budgets)


def test_spend_starts_a_new_window_with_the_whole_budget_once_the_last_one_ends(
    throttle: Throttle,
) -> None:
    limit, key = rate_limit("2/second"), uuid.uuid4().hex
    spent = [throttle.spend(limit, "test", key) for _ in range(3)]
    time.sleep(1.1)

    renewed = throttle.spend(limit, "test", key)

    assert [b.remaining for b in spent if b is not None] == [1, 0, -1]
    assert renewed is not None
    assert (renewed.remaining, renewed.reset_after) == (1, 1)


def test_two_throttles_on_one_redis_share_a_budget() -> None:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need TEST_REDIS_URL (make test sets it in CI)")
    limit, key = rate_limit("1/minute"), uuid.uuid4().hex
    Throttle(url).hit(limit, "test", key)

    with pytest.raises(TooManyRequestsError):
        Throttle(url).hit(limit, "test", key)


# --- Redis failing: every call ends within its deadline, and the throttle recovers by itself.

TIMEOUT_MS = 200
# Far above the 200 ms deadline, far below the hang there was without one.
BOUND_SECONDS = 1.5


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    with proxied_redis() as proxy:
        yield proxy


@pytest.fixture
def proxied(redis_proxy: TcpProxy) -> Iterator[Throttle]:
    throttle = Throttle(
        redis_proxy.through(os.environ["TEST_REDIS_URL"]), timeout_ms=TIMEOUT_MS, cooldown=0.2
    )
    yield throttle
    throttle.close()


def _timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    try:
        result: object = call()
    except Exception as error:
        result = error
    return result, time.monotonic() - started


@pytest.mark.parametrize("fault", FAULTS)
def test_credential_limits_fail_closed_with_a_retry_delay_when_redis_fails(
    proxied: Throttle, redis_proxy: TcpProxy, fault: str
) -> None:
    limit, key = rate_limit("5/minute"), uuid.uuid4().hex
    proxied.hit(limit, "test", key)  # a pooled connection exists
    FAULTS[fault](redis_proxy)

    refused, seconds = _timed(lambda: proxied.hit(limit, "test", key))
    again, again_seconds = _timed(lambda: proxied.hit(limit, "test", key))

    assert isinstance(refused, ServiceUnavailableError)
    assert refused.retry_after == STORE_RETRY_AFTER_SECONDS
    assert seconds < BOUND_SECONDS
    # Within the cooldown, nobody waits for Redis again.
    assert isinstance(again, ServiceUnavailableError)
    assert again_seconds < 0.05


@pytest.mark.parametrize("fault", FAULTS)
def test_the_general_limit_fails_open_when_redis_fails(
    proxied: Throttle, redis_proxy: TcpProxy, fault: str
) -> None:
    limit, key = rate_limit("5/minute"), uuid.uuid4().hex
    assert proxied.spend(limit, "test", key) is not None
    FAULTS[fault](redis_proxy)

    budget, seconds = _timed(lambda: proxied.spend(limit, "test", key))

    assert budget is None
    assert seconds < BOUND_SECONDS


def test_the_throttle_recovers_by_itself_when_redis_is_back(
    proxied: Throttle, redis_proxy: TcpProxy
) -> None:
    limit, key = rate_limit("5/minute"), uuid.uuid4().hex
    redis_proxy.refuse()
    with pytest.raises(ServiceUnavailableError):
        proxied.hit(limit, "test", key)
    redis_proxy.forward()
    time.sleep(0.3)  # the cooldown (0.2 s) passes

    proxied.hit(limit, "test", key)
    assert proxied.spend(limit, "test-spend", key) is not None
    proxied.check()


def test_readiness_check_fails_within_the_deadline_while_redis_stalls(
    proxied: Throttle, redis_proxy: TcpProxy
) -> None:
    redis_proxy.stall_new()

    failed, seconds = _timed(proxied.check)

    assert isinstance(failed, StoreUnavailableError)
    assert seconds < BOUND_SECONDS


def test_spend_soon_never_blocks_the_event_loop_while_redis_is_silent(
    proxied: Throttle, redis_proxy: TcpProxy
) -> None:
    limit = rate_limit("5/minute")
    redis_proxy.pause()

    async def scenario() -> tuple[list[Budget | None], float]:
        ticks, started = 0, time.monotonic()

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        budgets = await asyncio.gather(
            *(proxied.spend_soon(limit, "test", uuid.uuid4().hex) for _ in range(20))
        )
        elapsed = time.monotonic() - started
        ticker.cancel()
        # The loop kept turning: at least a tick per 50 ms of waiting.
        assert ticks >= elapsed / 0.05 - 1, (ticks, elapsed)
        return budgets, elapsed

    budgets, elapsed = asyncio.run(scenario())

    assert budgets == [None] * 20
    assert elapsed < BOUND_SECONDS
