"""Deleting an account while the same account has requests in flight: every request is
answered 2xx, 401, 404 or 409, never 500, and nothing is left half-written.

On committed data (the rolled-back test transaction cannot race), each operation is sent at
the same moment as `DELETE /v1/users/me`, many times over. On PostgreSQL, before writers
locked the user's row, logins, refreshes and password changes met a deletion within these
rounds and got 500 (a foreign-key IntegrityError, a StaleDataError).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from starlette.testclient import TestClient

from taskapi.models import IdempotentRequest, RefreshToken, Task, TaskCount, User
from tests.utils.concurrency import at_once
from tests.utils.factories import DEFAULT_PASSWORD, bearer, delete_own_account, register_user

ROUNDS = 25
ANSWERS_TO_A_RACE = {401, 404, 409}
OWNED_ROWS: dict[str, Any] = {
    "users": User.id,
    "tasks": Task.owner_id,
    "task_counts": TaskCount.owner_id,
    "refresh_tokens": RefreshToken.user_id,
    "idempotent_requests": IdempotentRequest.owner_id,
}
MERGE_PATCH = {"content-type": "application/merge-patch+json"}


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    headers: dict[str, str]
    refresh_token: str
    task_id: str


Operation = Callable[[TestClient, Account], Any]

OPERATIONS: dict[str, tuple[Operation, int]] = {
    "login": (
        lambda c, a: c.post(
            "/v1/auth/token", json={"email": a.email, "password": DEFAULT_PASSWORD}
        ),
        200,
    ),
    "refresh": (
        lambda c, a: c.post("/v1/auth/refresh", json={"refresh_token": a.refresh_token}),
        200,
    ),
    "password-change": (
        lambda c, a: c.patch(
            "/v1/users/me",
            json={"password": "a brand new passphrase", "current_password": DEFAULT_PASSWORD},
            headers={**a.headers, **MERGE_PATCH},
        ),
        200,
    ),
    "task-create": (
        lambda c, a: c.post(
            "/v1/tasks",
            json={"title": "in flight"},
            headers={**a.headers, "Idempotency-Key": f"race-{a.id}"},
        ),
        201,
    ),
    "task-patch": (
        lambda c, a: c.patch(
            f"/v1/tasks/{a.task_id}", json={"status": "done"}, headers={**a.headers, **MERGE_PATCH}
        ),
        200,
    ),
    "task-delete": (lambda c, a: c.delete(f"/v1/tasks/{a.task_id}", headers=a.headers), 204),
}


def open_account(client: TestClient) -> Account:
    user = register_user(client)
    tokens = client.post(
        "/v1/auth/token", json={"email": user["email"], "password": DEFAULT_PASSWORD}
    ).json()
    headers = bearer(tokens["access_token"])
    task = client.post("/v1/tasks", json={"title": "owned"}, headers=headers).json()
    return Account(user["id"], user["email"], headers, tokens["refresh_token"], task["id"])


def rows_left(engine: Engine, user_id: str) -> dict[str, int]:
    with engine.connect() as connection:
        counts = {
            table: connection.scalar(select(func.count()).where(column == uuid.UUID(user_id)))
            for table, column in OWNED_ROWS.items()
        }
    return {table: count for table, count in counts.items() if count}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_deleting_the_account_while_it_has_a_request_in_flight_is_never_a_500(
    committing_client: TestClient, engine: Engine, operation: str
) -> None:
    send, success = OPERATIONS[operation]
    seen: set[tuple[int, int]] = set()
    for _ in range(ROUNDS):
        account = open_account(committing_client)
        try:
            answer, deletion = at_once(
                lambda a=account: send(committing_client, a),
                lambda a=account: delete_own_account(committing_client, a.headers),
            )

            seen.add((answer.status_code, deletion.status_code))
            assert answer.status_code in {success, *ANSWERS_TO_A_RACE}, answer.text
            assert deletion.status_code in {204, 401}, deletion.text
            if deletion.status_code == 401:  # the password change won: the old token is revoked
                delete_own_account(
                    committing_client,
                    bearer(
                        committing_client.post(
                            "/v1/auth/token",
                            json={"email": account.email, "password": "a brand new passphrase"},
                        ).json()["access_token"]
                    ),
                    password="a brand new passphrase",
                )
            assert rows_left(engine, account.id) == {}, (operation, answer.status_code)
        finally:
            # Committed for real: a round that fails must not leave the account to the tests
            # that share this database (its rows go with it, by their foreign keys).
            with engine.begin() as connection:
                connection.execute(delete(User).where(User.id == uuid.UUID(account.id)))
    assert all(status < 500 for pair in seen for status in pair), seen
