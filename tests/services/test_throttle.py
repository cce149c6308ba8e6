"""Rate limits count the same in memory and in Redis (shared by every worker)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from taskapi.errors import TooManyRequestsError
from taskapi.services.throttle import Throttle, rate_limit


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


def test_two_throttles_on_one_redis_share_a_budget() -> None:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need TEST_REDIS_URL (make test sets it in CI)")
    limit, key = rate_limit("1/minute"), uuid.uuid4().hex
    Throttle(url).hit(limit, "test", key)

    with pytest.raises(TooManyRequestsError):
        Throttle(url).hit(limit, "test", key)
