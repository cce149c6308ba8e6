"""The credential throttle as deployed: `taskapi serve` with two workers counting in Redis,
guessed at from several loopback addresses (each request's source address is bound, so the
server sees a different client). Guessing is cut off whichever worker answers, and the owner
still gets in from an address of their own."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.utils.factories import DEFAULT_PASSWORD, user_payload
from tests.utils.servers import RunningServer, running_server

PAIR, CEILING = 3, 6
GUESSES_PER_ADDRESS = 10


@pytest.fixture(scope="module")
def guarded_server(
    ops_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL (make test sets it in CI)")
    with running_server(
        database_url=ops_database_url,
        workdir=Path(tmp_path_factory.mktemp("guarded")),
        env={
            "REDIS_URL": redis_url,
            "LOGIN_RATE_LIMIT_PER_ACCOUNT_AND_CLIENT": f"{PAIR}/minute",
            "LOGIN_RATE_LIMIT_PER_ACCOUNT": f"{CEILING}/hour",
        },
    ) as server:
        yield server


def client_from(address: str) -> httpx.Client:
    """A client whose connections leave from `address` (new ones each time, so that both
    workers get some)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, timeout=10, headers={"Connection": "close"})


def test_served_guessing_is_bounded_across_workers_and_the_owner_gets_in(
    guarded_server: RunningServer,
) -> None:
    base = f"{guarded_server.base_url}/v1"
    network = f"127.{1 + secrets.randbelow(254)}.{secrets.randbelow(255)}"
    *attackers, owner_address = [f"{network}.{n}" for n in range(1, 5)]
    with client_from(owner_address) as owner:
        victim = user_payload(email=f"{uuid.uuid4().hex}@example.com")
        assert owner.post(f"{base}/users", json=victim).status_code == 201

        statuses: list[int] = []
        for address in attackers:
            with client_from(address) as attacker:
                statuses += [
                    attacker.post(
                        f"{base}/auth/token",
                        json={"email": victim["email"], "password": f"guess {n:08d}"},
                    ).status_code
                    for n in range(GUESSES_PER_ADDRESS)
                ]
        owner_login = owner.post(
            f"{base}/auth/token", json={"email": victim["email"], "password": DEFAULT_PASSWORD}
        )

    assert set(statuses) == {401, 429}
    # The account's ceiling, and then one guess for each address not yet failed.
    assert statuses.count(401) <= CEILING + len(attackers)
    assert owner_login.status_code == 200
