"""Every kind of failure answers RFC 9457 problem+json with the right status and a request id."""

from __future__ import annotations

from typing import Any

import pytest
from connexion import AsyncApp
from starlette.testclient import TestClient

from taskapi.services import users
from tests.utils.factories import register_user, user_payload

PROBLEM_TYPE = "tag:taskapi.dev,2026:problem/"


def assert_problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEM_TYPE + kind
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


def test_malformed_json_is_400_malformed_request(client: TestClient) -> None:
    response = client.post(
        "/v1/users", content=b'{"email": ', headers={"content-type": "application/json"}
    )

    problem = assert_problem(response, 400, "malformed-request")
    assert problem["instance"] == "/v1/users"


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe{}", b'{"name": "\\ud800"}', b'{"age": NaN}', b'{"age": 1e999}'],
    ids=["invalid-utf8", "lone-surrogate", "nan", "infinite-number"],
)
def test_bodies_that_are_not_strict_json_in_utf8_are_400(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/users", content=body, headers={"content-type": "application/json"})

    assert_problem(response, 400, "malformed-request")


@pytest.mark.parametrize("body", [b"", b"   ", b"null", b"[]", b'"text"', b"42"])
def test_bodies_that_are_not_objects_are_validation_errors(client: TestClient, body: bytes) -> None:
    response = client.post("/v1/users", content=body, headers={"content-type": "application/json"})

    problem = assert_problem(response, 400, "validation-error")
    assert problem["errors"][0]["pointer"] == "/body"


def test_wrong_content_type_is_415(client: TestClient) -> None:
    response = client.post(
        "/v1/users", content=b"email=a@b.co", headers={"content-type": "text/plain"}
    )

    problem = assert_problem(response, 415, "unsupported-media-type")
    assert "text/plain" in problem["detail"]


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    problem = assert_problem(client.get("/v1/no-such-thing"), 404, "not-found")

    assert problem["instance"] == "/v1/no-such-thing"


def test_wrong_method_is_405_with_every_allowed_method(client: TestClient) -> None:
    response = client.delete("/v1/users")

    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, POST"


def test_wrong_method_on_a_templated_path_lists_its_methods(client: TestClient) -> None:
    user = register_user(client)

    response = client.put(f"/v1/users/{user['id']}", json={})

    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, DELETE"


def test_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    oversized = b"{" + b" " * (1024 * 1024) + b"}"

    response = client.post(
        "/v1/users", content=oversized, headers={"content-type": "application/json"}
    )

    assert_problem(response, 413, "payload-too-large")


def test_chunked_body_over_the_limit_is_cut_off(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b" " * 65536

    response = client.post(
        "/v1/users", content=chunks(), headers={"content-type": "application/json"}
    )

    assert_problem(response, 413, "payload-too-large")


def test_unhandled_exception_is_a_generic_500_without_internals(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(**_: Any) -> None:
        raise RuntimeError("SELECT secret FROM vault")

    monkeypatch.setattr(users, "get", explode)

    response = client.get("/v1/users/anything", headers=admin_headers)

    problem = assert_problem(response, 500, "internal-error")
    assert "SELECT" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert problem["detail"].startswith("The service met an unexpected condition.")


def test_problem_fields_match_across_errors(app: AsyncApp, client: TestClient) -> None:
    register_user(client, email="taken@example.com")

    response = client.post("/v1/users", json=user_payload(email="taken@example.com"))

    problem = assert_problem(response, 409, "conflict")
    assert set(problem) == {"type", "title", "status", "detail", "instance", "request_id"}


# Regressions found by fuzzing (schemathesis and tests/fuzz): each answered 500 or stored data
# the spec's own response schema then refused.


@pytest.mark.parametrize("email", ["a\x00b@example.com", "ad\u0000a@example.com"])
def test_login_email_with_nul_is_400_not_a_database_error(client: TestClient, email: str) -> None:
    # PostgreSQL cannot compare text holding U+0000; the contract refuses it before any query.
    response = client.post("/v1/auth/token", json={"email": email, "password": "x" * 12})

    problem = assert_problem(response, 400, "validation-error")
    assert problem["errors"][0]["pointer"] == "/body/email"


@pytest.mark.parametrize(
    "email", ["ádá@exämple.com", "a\tb@example.com", "a@b@example.com", "@example.com", "a@-x.com"]
)
def test_registration_refuses_what_is_not_an_rfc_5321_mailbox(
    client: TestClient, email: str
) -> None:
    response = client.post("/v1/users", json=user_payload(email=email))

    problem = assert_problem(response, 400, "validation-error")
    assert problem["errors"][0]["pointer"] == "/body/email"


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "nul\x00inside"), ("description", "nul\x00inside")],
)
def test_task_text_with_nul_is_400_on_every_database(
    client: TestClient, user_headers: dict[str, str], field: str, value: str
) -> None:
    body = {"title": "ok", field: value}

    response = client.post("/v1/tasks", json=body, headers=user_headers)

    problem = assert_problem(response, 400, "validation-error")
    assert problem["errors"][0]["pointer"] == f"/body/{field}"
