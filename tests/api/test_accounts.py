"""Accounts under attack, over HTTP: re-authentication, sessions that end, the password
policy, the registration limit and the audit trail."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database
from taskapi.settings import Settings
from tests.utils.factories import (
    DEFAULT_PASSWORD,
    bearer,
    delete_own_account,
    log_in,
    register_user,
    signed_up,
    user_payload,
)

Headers = dict[str, str]
MERGE_PATCH = {"content-type": "application/merge-patch+json"}
NEW_PASSWORD = "a brand new passphrase"


def assert_revoked(response: Any) -> None:
    assert response.status_code == 401
    assert response.json()["detail"] == "The token has been revoked."


# --- Re-authentication for deleting the account -------------------------------------------


def test_deleting_my_account_without_a_password_is_refused_and_changes_nothing(
    client: TestClient, user_headers: Headers
) -> None:
    response = client.delete("/v1/users/me", headers=user_headers)

    assert response.status_code == 400
    assert client.get("/v1/users/me", headers=user_headers).status_code == 200


def test_deleting_my_account_with_a_wrong_password_is_refused(
    client: TestClient, user_headers: Headers
) -> None:
    response = delete_own_account(client, user_headers, password="not my password")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"pointer": "/body/current_password", "message": "The current password is wrong."}
    ]
    assert client.get("/v1/users/me", headers=user_headers).status_code == 200


def test_deleting_my_account_with_my_password_ends_every_session(client: TestClient) -> None:
    user, headers = signed_up(client)
    other_session = log_in(client, email=user["email"])

    assert delete_own_account(client, headers).status_code == 204

    assert_revoked(client.get("/v1/users/me", headers=bearer(other_session["access_token"])))
    assert (
        client.post(
            "/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
        ).status_code
        == 401
    )


def test_users_cannot_delete_themselves_by_id_without_their_password(
    client: TestClient, user_and_headers: tuple[dict[str, Any], Headers]
) -> None:
    user, headers = user_and_headers

    response = client.delete(f"/v1/users/{user['id']}", headers=headers)

    assert response.status_code == 403
    assert client.get("/v1/users/me", headers=headers).status_code == 200


# --- Sessions that end at once -------------------------------------------------------------


def test_logout_ends_the_sessions_access_tokens_at_once(client: TestClient) -> None:
    user = register_user(client)
    tokens = log_in(client, email=user["email"])
    headers = bearer(tokens["access_token"])

    client.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers)

    assert_revoked(client.get("/v1/users/me", headers=headers))
    assert_revoked(client.post("/v1/tasks", json={"title": "after logout"}, headers=headers))


def test_logout_leaves_the_users_other_sessions_alone(client: TestClient) -> None:
    user = register_user(client)
    phone, laptop = log_in(client, email=user["email"]), log_in(client, email=user["email"])

    client.post(
        "/v1/auth/logout",
        json={"refresh_token": phone["refresh_token"]},
        headers=bearer(phone["access_token"]),
    )

    assert client.get("/v1/users/me", headers=bearer(laptop["access_token"])).status_code == 200


def test_refreshed_access_tokens_belong_to_the_same_session(client: TestClient) -> None:
    user = register_user(client)
    first = log_in(client, email=user["email"])
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()

    client.post(
        "/v1/auth/logout",
        json={"refresh_token": second["refresh_token"]},
        headers=bearer(second["access_token"]),
    )

    assert_revoked(client.get("/v1/users/me", headers=bearer(first["access_token"])))


def test_password_change_ends_every_session_at_once(client: TestClient) -> None:
    user = register_user(client)
    sessions = [log_in(client, email=user["email"]) for _ in range(2)]

    changed = client.patch(
        "/v1/users/me",
        json={"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD},
        headers={**bearer(sessions[0]["access_token"]), **MERGE_PATCH},
    )

    assert changed.status_code == 200
    for tokens in sessions:
        assert_revoked(client.get("/v1/users/me", headers=bearer(tokens["access_token"])))


# --- Password policy ---------------------------------------------------------------------


WEAK_PASSWORDS = [
    pytest.param(" " * 12, "must not be only white space", id="white-space"),
    pytest.param(
        "password1234", "is too easy to guess (This is a very common password)", id="common"
    ),
    pytest.param("aaaaaaaaaaaa", "is too easy to guess (Repeats like", id="repeated"),
    pytest.param("{email}", "must not be or contain the account's email address", id="email"),
    pytest.param("{name} 1234", "must not be or contain the account's name", id="name"),
    pytest.param("qwertyuiop12", "is too easy to guess", id="keyboard-walk"),
]


@pytest.mark.parametrize(("password", "reason"), WEAK_PASSWORDS)
def test_registration_refuses_weak_passwords_saying_why(
    client: TestClient, admin_headers: Headers, password: str, reason: str
) -> None:
    payload = user_payload(name="Marguerite Perey")
    payload["password"] = password.format(email=payload["email"], name=payload["name"])

    response = client.post("/v1/users", json=payload)

    assert response.status_code == 400
    assert response.json()["type"] == "tag:taskapi.dev,2026:problem/validation-error"
    (error,) = response.json()["errors"]
    assert error["pointer"] == "/body/password"
    assert error["message"].startswith(f"The password {reason}")
    assert client.get("/v1/users", headers=admin_headers).json()["meta"]["total"] == 1


@pytest.mark.parametrize(("password", "reason"), WEAK_PASSWORDS)
def test_password_change_refuses_weak_passwords_saying_why(
    client: TestClient, password: str, reason: str
) -> None:
    user, headers = signed_up(client, name="Marguerite Perey")
    new = password.format(email=user["email"], name=user["name"])

    response = client.patch(
        "/v1/users/me",
        json={"password": new, "current_password": DEFAULT_PASSWORD},
        headers={**headers, **MERGE_PATCH},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith(f"The password {reason}")
    assert client.get("/v1/users/me", headers=headers).status_code == 200


def test_a_strong_password_of_the_longest_allowed_length_is_accepted(client: TestClient) -> None:
    register_user(client, password="x" * 60 + " violet harbour kettle " + "z" * 45)


# --- Registration limit --------------------------------------------------------------------


def test_registration_is_limited_per_client_address(settings: Settings, database: Database) -> None:
    limited = Settings(**{**settings.__dict__, "registration_rate_limit_per_client": "2/minute"})
    app = create_app(limited, database=database)
    with (
        app.test_client(client=("127.0.9.1", 4000)) as flooder,
        app.test_client(client=("127.0.9.2", 4000)) as neighbour,
    ):
        statuses = [flooder.post("/v1/users", json=user_payload()).status_code for _ in range(3)]
        other = neighbour.post("/v1/users", json=user_payload())

    assert statuses == [201, 201, 429]
    assert other.status_code == 201


# --- Audit trail -----------------------------------------------------------------------------


def test_security_events_are_audited_with_actor_client_request_id_and_outcome(
    client: TestClient, json_logs: Any
) -> None:
    user = register_user(client)
    client.post("/v1/auth/token", json={"email": user["email"], "password": "wrong password!"})
    tokens = log_in(client, email=user["email"])
    headers = bearer(tokens["access_token"])
    client.patch(
        "/v1/users/me",
        json={"password": NEW_PASSWORD, "current_password": DEFAULT_PASSWORD},
        headers={**headers, **MERGE_PATCH},
    )
    headers = bearer(log_in(client, email=user["email"], password=NEW_PASSWORD)["access_token"])
    delete_own_account(client, headers, password=NEW_PASSWORD)

    audit = [r for r in json_logs() if r["logger"] == "taskapi.audit"]
    assert [(r["event"], r["outcome"]) for r in audit] == [
        ("user.registered", "success"),
        ("login", "failure"),
        ("login", "success"),
        ("user.password_changed", "success"),
        ("login", "success"),
        ("user.deleted", "success"),
    ]
    assert audit[1]["account"] == user["email"]
    assert all(r["client"] == "testclient" and len(r["request_id"]) == 32 for r in audit)
    assert {r.get("actor") for r in audit} == {user["id"], None}
    text = json.dumps(audit)
    for secret in (DEFAULT_PASSWORD, NEW_PASSWORD, "wrong password!", tokens["refresh_token"]):
        assert secret not in text


def test_an_admin_deleting_a_user_is_audited_with_both_ids(
    client: TestClient, admin_headers: Headers, json_logs: Any
) -> None:
    victim = register_user(client)

    client.delete(f"/v1/users/{victim['id']}", headers=admin_headers)

    (record,) = [r for r in json_logs() if r.get("event") == "admin.user_deleted"]
    admin = client.get("/v1/users/me", headers=admin_headers).json()
    assert (record["actor"], record["target"], record["outcome"]) == (
        admin["id"],
        victim["id"],
        "success",
    )
    assert record["logger"] == "taskapi.audit"
