"""Redis fails under the service: nothing hangs and nothing is a 500. The general limit lets
requests through (counted), credential limits answer 503 with Retry-After, readiness names
Redis, liveness stays 200, and the service recovers when Redis is back."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.ops.conftest import FAST_FAILING
from tests.utils.factories import DEFAULT_PASSWORD, user_payload
from tests.utils.servers import RunningServer, running_server
from tests.utils.tcp_proxy import FAULTS, TcpProxy, proxied_redis

SERVICE_UNAVAILABLE = "tag:taskapi.dev,2026:problem/service-unavailable"
# Redis calls have a 200 ms deadline (REDIS_TIMEOUT_MS): every answer comes far sooner than this.
BOUND_SECONDS = 2.0
RECOVERY_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[TcpProxy]:
    with proxied_redis() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def redis_server(
    ops_database_url: str,
    redis_proxy: TcpProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    with running_server(
        database_url=ops_database_url,
        workdir=tmp_path_factory.mktemp("redis-server"),
        env={**FAST_FAILING, "REDIS_URL": redis_proxy.through(os.environ["TEST_REDIS_URL"])},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def account(redis_server: RunningServer) -> dict[str, str]:
    payload = user_payload()
    response = httpx.post(f"{redis_server.base_url}/v1/users", json=payload, timeout=10)
    assert response.status_code == 201, response.text
    return payload


def _timed(
    client: httpx.Client, method: str, path: str, **kwargs: object
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def _log_in(client: httpx.Client, account: dict[str, str]) -> tuple[httpx.Response, float]:
    credentials = {"email": account["email"], "password": DEFAULT_PASSWORD}
    return _timed(client, "POST", "/v1/auth/token", json=credentials)


def _wait_until_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while client.get("/v1/readyz").status_code != 200:
        assert time.monotonic() < deadline, "no recovery"
        time.sleep(0.1)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_redis_is_answered_in_time_and_the_service_recovers(
    redis_server: RunningServer, redis_proxy: TcpProxy, account: dict[str, str], fault: str
) -> None:
    with httpx.Client(base_url=redis_server.base_url, timeout=20) as client:
        token = _log_in(client, account)[0].json()["access_token"]
        me = {"Authorization": f"Bearer {token}"}
        unchecked_before = redis_server.metric("taskapi_rate_limit_unchecked_total")
        FAULTS[fault](redis_proxy)
        try:
            answers = {
                "alive": _timed(client, "GET", "/v1/healthz"),
                "me": _timed(client, "GET", "/v1/users/me", headers=me),
                "log in": _log_in(client, account),
                "ready": _timed(client, "GET", "/v1/readyz"),
                "alive again": _timed(client, "GET", "/v1/healthz"),
            }
            unchecked = redis_server.metric("taskapi_rate_limit_unchecked_total")
        finally:
            redis_proxy.forward()
        _wait_until_ready(client)
        after, _ = _log_in(client, account)
        me_after, _ = _timed(client, "GET", "/v1/users/me", headers=me)

    assert {
        name: seconds < BOUND_SECONDS for name, (_, seconds) in answers.items()
    } == dict.fromkeys(answers, True)
    assert answers["alive"][0].status_code == answers["alive again"][0].status_code == 200
    # The general limit fails open: the request is served, without RateLimit headers.
    assert answers["me"][0].status_code == 200
    assert "ratelimit" not in answers["me"][0].headers
    assert unchecked > unchecked_before
    # Credential limits fail closed.
    refused = answers["log in"][0]
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["type"] == SERVICE_UNAVAILABLE
    not_ready = answers["ready"][0]
    assert not_ready.status_code == 503
    assert "Redis" in not_ready.json()["detail"]
    # Back by itself.
    assert after.status_code == 200
    assert me_after.status_code == 200
    assert "ratelimit" in me_after.headers
    # Connections were replaced, not piled up: at most one per thread that talks to Redis
    # (4 throttle threads and 6 handler threads per worker, 2 workers).
    assert redis_proxy.connections() <= 2 * (4 + 6)
    log = redis_server.log()
    assert "rate-limit store unavailable" in log
    assert "Traceback" not in log
