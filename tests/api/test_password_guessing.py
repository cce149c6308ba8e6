"""The credential throttle over HTTP: guessing is bounded, the owner is never locked out.

Each test speaks from several client addresses (every 127.x.y.z is loopback), with the
throttle counting in memory and in Redis (TEST_REDIS_URL) as deployed. Addresses are drawn at
random per test, so that counts left in Redis by an earlier run never meet this one.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database
from taskapi.settings import Settings
from tests.utils.factories import DEFAULT_PASSWORD, bearer, register_user

# Small budgets, so that a test reaches each of them in a few requests.
PAIR, PER_CLIENT, CEILING = 3, 10, 8
WRONG = "not the right password"
MERGE_PATCH = {"content-type": "application/merge-patch+json"}
TOO_MANY = "tag:taskapi.dev,2026:problem/too-many-requests"

ClientAt = Callable[[str], TestClient]


@pytest.fixture(params=["memory", "redis"])
def client_at(
    request: pytest.FixtureRequest, settings: Settings, database: Database
) -> Iterator[ClientAt]:
    """A test client per client address, all on one app whose throttle counts in memory or
    in Redis."""
    redis_url = ""
    if request.param == "redis":
        redis_url = os.environ.get("TEST_REDIS_URL", "")
        if not redis_url:
            pytest.skip("Redis tests need TEST_REDIS_URL (make test sets it in CI)")
    limited = Settings(
        **{
            **settings.__dict__,
            "redis_url": redis_url,
            "login_rate_limit_per_account_and_client": f"{PAIR}/minute;{PAIR * 2}/hour",
            "login_rate_limit_per_client": f"{PER_CLIENT}/minute",
            "login_rate_limit_per_account": f"{CEILING}/hour",
        }
    )
    app = create_app(limited, database=database)
    clients: list[TestClient] = []

    def at(address: str) -> TestClient:
        client = app.test_client(client=(address, 40000))
        clients.append(client.__enter__())
        return client

    yield at
    for client in clients:
        client.__exit__(None, None, None)


def register(client: TestClient) -> dict[str, Any]:
    """An account whose email no earlier run used (Redis keeps counts between runs)."""
    return register_user(client, email=f"{uuid.uuid4().hex}@example.com")


def addresses(count: int) -> list[str]:
    """`count` distinct loopback addresses of one random 127.x.y.0/24."""
    x, y = 1 + secrets.randbelow(254), secrets.randbelow(255)
    return [f"127.{x}.{y}.{n}" for n in range(1, count + 1)]


def log_in(client: TestClient, email: str, password: str) -> Any:
    return client.post("/v1/auth/token", json={"email": email, "password": password})


def guess_until_refused(client: TestClient, email: str, *, at_most: int = 50) -> list[int]:
    statuses = []
    for _ in range(at_most):
        statuses.append(log_in(client, email, WRONG).status_code)
        if statuses[-1] == 429:
            break
    return statuses


def test_guessing_from_one_address_waits_while_the_owner_logs_in_from_another(
    client_at: ClientAt,
) -> None:
    attacker_address, owner_address = addresses(2)
    attacker, owner = client_at(attacker_address), client_at(owner_address)
    victim = register(owner)

    statuses = guess_until_refused(attacker, victim["email"])
    refused = log_in(attacker, victim["email"], DEFAULT_PASSWORD)

    assert statuses == [401] * PAIR + [429]
    # Refused before the password is looked at: even the right one waits.
    assert refused.status_code == 429
    assert refused.json()["type"] == TOO_MANY
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert log_in(owner, victim["email"], DEFAULT_PASSWORD).status_code == 200


def test_guessing_from_many_addresses_is_bounded_and_the_owner_still_gets_in(
    client_at: ClientAt,
) -> None:
    *attacker_addresses, owner_address = addresses(7)
    victim = register(client_at(owner_address))

    guesses = 0
    for address in attacker_addresses:
        statuses = guess_until_refused(client_at(address), victim["email"])
        guesses += statuses.count(401)
        assert statuses[-1] == 429

    # Past the account's ceiling, each address that had not failed yet got one guess.
    assert guesses <= CEILING + len(attacker_addresses)
    assert all(
        log_in(client_at(a), victim["email"], DEFAULT_PASSWORD).status_code == 429
        for a in attacker_addresses
    )
    assert log_in(client_at(owner_address), victim["email"], DEFAULT_PASSWORD).status_code == 200


def test_spraying_many_accounts_from_one_address_is_limited(client_at: ClientAt) -> None:
    (address,) = addresses(1)
    sprayer = client_at(address)
    victims = [register(sprayer)["email"] for _ in range(PER_CLIENT + 1)]

    statuses = [log_in(sprayer, email, WRONG).status_code for email in victims]

    assert statuses == [401] * PER_CLIENT + [429]


def test_only_failures_count_and_a_login_forgives_the_typos_before_it(
    client_at: ClientAt,
) -> None:
    (address,) = addresses(1)
    client = client_at(address)
    user = register(client)

    for _ in range(PAIR * 3):
        assert log_in(client, user["email"], DEFAULT_PASSWORD).status_code == 200
    for _ in range(3):
        assert [log_in(client, user["email"], WRONG).status_code for _ in range(PAIR - 1)] == [
            401
        ] * (PAIR - 1)
        assert log_in(client, user["email"], DEFAULT_PASSWORD).status_code == 200


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_current_password_guesses_share_the_login_budget(client_at: ClientAt, method: str) -> None:
    """A stolen access token is no password oracle: wrong `current_password`s count against
    the same budget as logins, and past it even the right one waits."""
    thief_address, owner_address = addresses(2)
    thief, owner = client_at(thief_address), client_at(owner_address)
    user = register(owner)
    headers = bearer(log_in(owner, user["email"], DEFAULT_PASSWORD).json()["access_token"])

    def send(current_password: str) -> Any:
        if method == "PATCH":
            body = {"password": "a brand new passphrase", "current_password": current_password}
            return thief.patch("/v1/users/me", json=body, headers={**headers, **MERGE_PATCH})
        body = {"current_password": current_password}
        return thief.request("DELETE", "/v1/users/me", json=body, headers=headers)

    statuses = [send(WRONG).status_code for _ in range(PAIR)]
    refused = send(DEFAULT_PASSWORD)

    assert statuses == [400] * PAIR
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    assert log_in(thief, user["email"], DEFAULT_PASSWORD).status_code == 429
    assert log_in(owner, user["email"], DEFAULT_PASSWORD).status_code == 200
    assert owner.get("/v1/users/me", headers=headers).status_code == 200


def test_ipv6_clients_are_counted_by_their_64(client_at: ClientAt) -> None:
    network = f"2001:db8:{1 + secrets.randbelow(0xFFFE):x}"
    victim = register(client_at("127.0.0.1"))

    statuses = [
        log_in(client_at(f"{network}:0::{n + 1}"), victim["email"], WRONG).status_code
        for n in range(PAIR + 1)
    ]
    neighbour = log_in(client_at(f"{network}:1::1"), victim["email"], DEFAULT_PASSWORD)

    assert statuses == [401] * PAIR + [429]
    assert neighbour.status_code == 200
