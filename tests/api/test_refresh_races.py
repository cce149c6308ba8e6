"""Two refreshes of one refresh token at once (a client with two tabs), on committed data."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.utils.concurrency import at_once
from tests.utils.factories import bearer, delete_own_account, log_in, signed_up

ROUNDS = 10


def test_concurrent_refreshes_by_one_client_get_the_same_refresh_token(
    committing_client: TestClient,
) -> None:
    client = committing_client
    user, headers = signed_up(client)
    for _ in range(ROUNDS):
        first = log_in(client, email=user["email"])

        def refresh(token: str = first["refresh_token"]) -> Any:
            return client.post("/v1/auth/refresh", json={"refresh_token": token})

        answers = at_once(refresh, refresh)

        assert [a.status_code for a in answers] == [200, 200]
        assert answers[0].json()["refresh_token"] == answers[1].json()["refresh_token"]
        for answer in answers:
            me = client.get("/v1/users/me", headers=bearer(answer.json()["access_token"]))
            assert me.status_code == 200
    delete_own_account(client, headers)
