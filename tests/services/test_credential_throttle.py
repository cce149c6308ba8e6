"""The credential throttle's rules, on a clock the test moves (the HTTP behaviour is in
tests/api/test_password_guessing.py)."""

from __future__ import annotations

import pytest

from taskapi.errors import ServiceUnavailableError, TooManyRequestsError
from taskapi.services.credential_throttle import CredentialLimits, CredentialThrottle
from taskapi.services.throttle import Throttle, client_bucket, rate_limits
from tests.utils.clock import Clock


def throttle(**limits: str) -> CredentialThrottle:
    chosen = {
        "per_account_and_client": "3/minute;6/hour;9/day",
        "per_client": "100/minute",
        "per_account": "100/hour",
        **limits,
    }
    return CredentialThrottle(
        Throttle("memory://"), CredentialLimits(**{k: rate_limits(v) for k, v in chosen.items()})
    )


def wait_after_failing(credentials: CredentialThrottle, times: int) -> int:
    for _ in range(times):
        credentials.failed(account="ada@example.com", client="192.0.2.1")
    with pytest.raises(TooManyRequestsError) as refused:
        credentials.check(account="ada@example.com", client="192.0.2.1")
    return refused.value.retry_after


def test_delays_grow_window_by_window(clock: Clock) -> None:
    credentials = throttle()

    first = wait_after_failing(credentials, 3)
    clock.now += first
    second = wait_after_failing(credentials, 3)
    clock.now += second
    third = wait_after_failing(credentials, 3)

    assert first <= 60 < second <= 3600 < third <= 86400


def test_a_success_forgives_this_address_only(clock: Clock) -> None:
    credentials = throttle()
    for client in ("192.0.2.1", "192.0.2.2"):
        for _ in range(3):
            credentials.failed(account="ada@example.com", client=client)

    credentials.succeeded(account="ada@example.com", client="192.0.2.1")

    credentials.check(account="ada@example.com", client="192.0.2.1")
    with pytest.raises(TooManyRequestsError):
        credentials.check(account="ada@example.com", client="192.0.2.2")


def test_past_the_account_ceiling_only_addresses_that_never_failed_may_try(clock: Clock) -> None:
    credentials = throttle(per_account="2/hour")
    credentials.failed(account="ada@example.com", client="192.0.2.1")
    credentials.failed(account="ada@example.com", client="192.0.2.2")

    credentials.check(account="ada@example.com", client="198.51.100.7")
    with pytest.raises(TooManyRequestsError) as refused:
        credentials.check(account="ada@example.com", client="192.0.2.1")
    assert 3000 < refused.value.retry_after <= 3600


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("testclient", "testclient"),
    ],
)
def test_clients_are_bucketed_by_address_and_ipv6_by_64(address: str, bucket: str) -> None:
    assert client_bucket(address) == bucket


def test_a_delay_is_audited_without_the_password(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = throttle()
    caplog.set_level("INFO", logger="taskapi.audit")

    wait_after_failing(credentials, 3)

    (record,) = [r for r in caplog.records if r.name == "taskapi.audit"]
    assert (record.event, record.outcome) == ("credentials.delayed", "refused")
    assert record.account == "ada@example.com"
    assert 0 < record.retry_after <= 60


def test_password_checks_fail_closed_when_the_store_does_not_answer() -> None:
    # Nothing listens on port 1: the connection is refused at once.
    credentials = CredentialThrottle(
        Throttle("redis://127.0.0.1:1/0"),
        CredentialLimits(
            per_account_and_client=rate_limits("3/minute"),
            per_client=rate_limits("3/minute"),
            per_account=rate_limits("3/minute"),
        ),
    )

    for attempt in (credentials.check, credentials.failed, credentials.succeeded):
        with pytest.raises(ServiceUnavailableError) as refused:
            attempt(account="ada@example.com", client="192.0.2.1")
        assert refused.value.retry_after > 0
