"""Authentication and authorization over HTTP: each OWASP API Top 10 attack that applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from connexion import AsyncApp
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
)

Headers = dict[str, str]
MERGE_PATCH = {"content-type": "application/merge-patch+json"}


def assert_unauthorized(response: Any, error_code: str = "invalid_token") -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "tag:taskapi.dev,2026:problem/unauthorized"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="taskapi"')
    assert f'error="{error_code}"' in challenge


def test_login_answers_a_token_pair_that_is_never_cached(client: TestClient) -> None:
    user = register_user(client)

    response = client.post(
        "/v1/auth/token", json={"email": user["email"], "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert client.get("/v1/users/me", headers=bearer(body["access_token"])).json() == user


@pytest.mark.parametrize("wrong", ["email", "password"])
def test_wrong_email_or_password_is_the_same_401(client: TestClient, wrong: str) -> None:
    user = register_user(client)
    credentials = {"email": user["email"], "password": DEFAULT_PASSWORD}
    credentials[wrong] = "nobody-at-all@example.com" if wrong == "email" else "wrong password!"

    response = client.post("/v1/auth/token", json=credentials)

    assert_unauthorized(response)
    assert response.json()["detail"] == "The email or password is wrong."


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt", "bearer a.b.c"],
)
def test_missing_or_malformed_credentials_are_401(
    client: TestClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/v1/users/me", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="taskapi", error=')


def _token(secret: str, *, algorithm: str = "HS256", **claims: Any) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": "x",
        "ver": 0,
        "iss": "taskapi",
        "aud": "taskapi",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        **claims,
    }
    return jwt.encode(payload, secret, algorithm=algorithm)


@pytest.mark.parametrize(
    "make_token",
    [
        lambda s, sub: _token(s, sub=sub, exp=int(datetime.now(UTC).timestamp()) - 60),
        lambda _s, sub: _token("another-secret-that-is-long-enough!!", sub=sub),
        lambda s, sub: _token(s, sub=sub, algorithm="HS384"),
        lambda _s, sub: jwt.encode({"sub": sub, "ver": 0}, None, algorithm="none"),
        lambda s, sub: _token(s, sub=sub, aud="somebody-else"),
    ],
    ids=["expired", "wrongly-signed", "other-algorithm", "alg-none", "wrong-audience"],
)
def test_forged_or_expired_tokens_are_401(
    client: TestClient, settings: Settings, make_token: Any
) -> None:
    user = register_user(client)

    response = client.get(
        "/v1/users/me", headers=bearer(make_token(settings.jwt_secret, user["id"]))
    )

    assert_unauthorized(response)


def test_refresh_reuse_after_the_grace_revokes_the_family_and_its_access_tokens(
    settings: Settings, database: Database
) -> None:
    with _limited_app(settings, database, refresh_grace_seconds=0).test_client() as client:
        user = register_user(client)
        first = log_in(client, email=user["email"])

        second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        replay = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        after_theft = client.post(
            "/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}
        )
        access_after_theft = client.get(
            "/v1/users/me", headers=bearer(second.json()["access_token"])
        )

    assert second.status_code == 200
    assert_unauthorized(replay)
    # The revocation was committed although the replay itself was refused.
    assert_unauthorized(after_theft)
    assert_unauthorized(access_after_theft)


def test_logout_revokes_the_refresh_token(client: TestClient) -> None:
    user = register_user(client)
    tokens = log_in(client, email=user["email"])
    headers = bearer(tokens["access_token"])

    response = client.post(
        "/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )

    assert response.status_code == 204
    refused = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unauthorized(refused)


def test_password_change_revokes_earlier_access_and_refresh_tokens(client: TestClient) -> None:
    user = register_user(client)
    old = log_in(client, email=user["email"])

    changed = client.patch(
        "/v1/users/me",
        json={"password": "a brand new passphrase", "current_password": DEFAULT_PASSWORD},
        headers={**bearer(old["access_token"]), **MERGE_PATCH},
    )

    assert changed.status_code == 200
    assert_unauthorized(client.get("/v1/users/me", headers=bearer(old["access_token"])))
    assert_unauthorized(
        client.post("/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
    )
    fresh = log_in(client, email=user["email"], password="a brand new passphrase")
    assert client.get("/v1/users/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_password_change_without_the_current_password_is_refused(
    client: TestClient, user_headers: Headers
) -> None:
    response = client.patch(
        "/v1/users/me",
        json={"password": "a brand new passphrase"},
        headers={**user_headers, **MERGE_PATCH},
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"pointer": "/body/current_password", "message": "A new password needs the current one."}
    ]


def test_patch_me_changes_name_and_age(client: TestClient, user_headers: Headers) -> None:
    response = client.patch(
        "/v1/users/me", json={"name": " Grace ", "age": 85}, headers={**user_headers, **MERGE_PATCH}
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["age"]) == ("Grace", 85)


@pytest.mark.parametrize("field", ["role", "id", "created_at", "email", "password_hash"])
def test_mass_assignment_of_protected_fields_is_refused(
    client: TestClient, user_headers: Headers, field: str
) -> None:
    response = client.patch(
        "/v1/users/me", json={field: "admin"}, headers={**user_headers, **MERGE_PATCH}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == f"/body/{field}"
    assert client.get("/v1/users/me", headers=user_headers).json()["role"] == "user"


def test_deleted_users_token_stops_working(client: TestClient, user_headers: Headers) -> None:
    assert delete_own_account(client, user_headers).status_code == 204

    assert_unauthorized(client.get("/v1/users/me", headers=user_headers))


def test_user_cannot_read_or_delete_another_user(client: TestClient, user_headers: Headers) -> None:
    victim = register_user(client)

    read = client.get(f"/v1/users/{victim['id']}", headers=user_headers)
    deleted = client.delete(f"/v1/users/{victim['id']}", headers=user_headers)

    assert read.status_code == deleted.status_code == 403
    assert read.json()["type"] == "tag:taskapi.dev,2026:problem/forbidden"


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/users"), ("DELETE", "/v1/users/{id}")])
def test_admin_operations_are_403_for_users_and_401_without_a_token(
    client: TestClient, user_headers: Headers, method: str, path: str
) -> None:
    url = path.format(id=register_user(client)["id"])

    assert client.request(method, url, headers=user_headers).status_code == 403
    assert_unauthorized(client.request(method, url), error_code="invalid_request")


def test_admin_lists_and_deletes_users(client: TestClient, admin_headers: Headers) -> None:
    victim = register_user(client)

    assert client.get("/v1/users", headers=admin_headers).json()["meta"]["total"] == 2
    assert client.delete(f"/v1/users/{victim['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/v1/users/{victim['id']}", headers=admin_headers).status_code == 404


def test_no_response_ever_carries_a_password_hash(
    client: TestClient, admin_headers: Headers
) -> None:
    _, headers = signed_up(client)

    for response in (
        client.get("/v1/users/me", headers=headers),
        client.get("/v1/users", headers=admin_headers),
    ):
        assert "argon2" not in response.text
        assert "password" not in response.text


def test_responses_carry_security_headers(client: TestClient, user_headers: Headers) -> None:
    response = client.get("/v1/users/me", headers=user_headers)

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert "access-control-allow-origin" not in response.headers


def _limited_app(settings: Settings, database: Database, **limits: Any) -> AsyncApp:
    return create_app(
        Settings(**{**settings.__dict__, **limits}),  # type: ignore[arg-type]
        database=database,
    )


def test_login_is_rate_limited_per_account_with_retry_after(
    settings: Settings, database: Database
) -> None:
    app = _limited_app(settings, database, login_rate_limit_per_account="3/minute")
    with app.test_client() as client:
        user = register_user(client)
        attempts = [
            client.post("/v1/auth/token", json={"email": user["email"], "password": "guess " * 3})
            for _ in range(4)
        ]

    assert [r.status_code for r in attempts] == [401, 401, 401, 429]
    assert attempts[-1].json()["type"] == "tag:taskapi.dev,2026:problem/too-many-requests"
    assert 0 < int(attempts[-1].headers["retry-after"]) <= 60


def test_every_route_is_rate_limited_per_client_with_ratelimit_headers(
    settings: Settings, database: Database
) -> None:
    app = _limited_app(settings, database, rate_limit="3/minute")
    with app.test_client() as client:
        responses = [client.get("/v1/users/me") for _ in range(4)]

    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    assert responses[0].headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert responses[0].headers["ratelimit"].startswith('"default";r=2;t=')
    assert "retry-after" in responses[-1].headers


def test_cors_answers_only_configured_origins(settings: Settings, database: Database) -> None:
    app = create_app(
        Settings(**{**settings.__dict__, "cors_origins": ("https://app.example",)}),
        database=database,
    )
    with app.test_client() as client:
        allowed = client.get("/v1/users/me", headers={"Origin": "https://app.example"})
        other = client.get("/v1/users/me", headers={"Origin": "https://evil.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers


def test_cors_preflights_spend_no_budget_and_refusals_reach_the_browser(
    settings: Settings, database: Database
) -> None:
    app = _limited_app(
        settings, database, rate_limit="2/minute", cors_origins=("https://app.example",)
    )
    origin = {"Origin": "https://app.example"}
    preflight = {**origin, "Access-Control-Request-Method": "GET"}
    with app.test_client() as client:
        preflights = [client.options("/v1/users/me", headers=preflight) for _ in range(3)]
        answers = [client.get("/v1/users/me", headers=origin) for _ in range(3)]

    assert [r.status_code for r in preflights] == [200, 200, 200]
    assert all("x-request-id" in r.headers for r in preflights)
    assert not any("ratelimit" in r.headers for r in preflights)
    assert [r.status_code for r in answers] == [401, 401, 429]
    assert answers[-1].headers["access-control-allow-origin"] == "https://app.example"
