"""The /users operations over HTTP, through the real app with response validation on."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from taskapi.db import Database
from taskapi.services import users
from tests.utils.factories import bearer, log_in, register_user, user_payload


def test_register_answers_201_with_location_and_the_user_without_secrets(
    client: TestClient,
) -> None:
    payload = user_payload(email="Ada@Example.com", name="  Ada Lovelace ")

    response = client.post("/v1/users", json=payload)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    user = response.json()
    assert response.headers["location"] == f"/v1/users/{user['id']}"
    assert user["email"] == "ada@example.com"
    assert user["name"] == "Ada Lovelace"
    assert user["age"] == payload["age"]
    assert user["role"] == "user"
    assert set(user) == {"id", "email", "name", "age", "role", "created_at", "updated_at"}
    assert payload["password"] not in response.text
    assert "argon2" not in response.text
    assert uuid.UUID(user["id"]).version == 7
    assert user["created_at"].endswith("Z")


def test_duplicate_email_is_409_regardless_of_case(client: TestClient) -> None:
    register_user(client, email="grace@example.com")

    response = client.post("/v1/users", json=user_payload(email="GRACE@example.COM"))

    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "tag:taskapi.dev,2026:problem/conflict"
    assert problem["detail"] == "A user with this email already exists."


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "must be an email address such as ada@example.com"),
        (
            "name",
            "   ",
            "must contain a character that is not white space, and no control characters",
        ),
        # ECMA-262's `$` matches at the very end only: not before a final newline.
        (
            "name",
            "Ada\n",
            "must contain a character that is not white space, and no control characters",
        ),
        ("name", "x" * 101, "must be at most 100 characters long"),
        ("age", 12, "must be at least 13"),
        ("age", 131, "must be at most 130"),
        ("age", 30.5, "must be an integer"),
        ("age", "30", "must be an integer"),
        ("password", "short", "must be at least 12 characters long"),
        ("password", "p" * 129, "must be at most 128 characters long"),
    ],
)
def test_register_rejects_each_invalid_field_with_a_pointer_and_plain_message(
    client: TestClient, field: str, value: object, message: str
) -> None:
    response = client.post("/v1/users", json=user_payload(**{field: value}))

    assert response.status_code == 400
    assert response.json()["errors"] == [{"pointer": f"/body/{field}", "message": message}]


def test_register_lists_every_failing_field_not_only_the_first(client: TestClient) -> None:
    response = client.post(
        "/v1/users", json={"email": "nope", "age": 3, "password": "x", "role": "admin"}
    )

    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "tag:taskapi.dev,2026:problem/validation-error"
    assert {e["pointer"] for e in problem["errors"]} == {
        "/body/role",
        "/body/email",
        "/body/name",
        "/body/age",
        "/body/password",
    }
    assert problem["detail"] == "The request has 5 invalid fields."


@pytest.mark.parametrize("field", ["role", "id", "created_at", "password_hash"])
def test_register_refuses_fields_that_are_not_inputs(client: TestClient, field: str) -> None:
    response = client.post("/v1/users", json=user_payload(**{field: "admin"}))

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"pointer": f"/body/{field}", "message": "is not a known field"}
    ]


def test_rejected_registration_creates_nothing(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    client.post("/v1/users", json=user_payload(email="eve@example.com", age=5))

    listing = client.get("/v1/users", headers=admin_headers).json()

    assert all(u["email"] != "eve@example.com" for u in listing["data"])


def test_admin_reads_any_user(client: TestClient, admin_headers: dict[str, str]) -> None:
    user = register_user(client)

    response = client.get(f"/v1/users/{user['id']}", headers=admin_headers)

    assert response.status_code == 200
    assert response.json() == user


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "abc", "1", "%00"])
def test_get_user_unknown_or_malformed_id_is_404_problem(
    client: TestClient, admin_headers: dict[str, str], user_id: str
) -> None:
    response = client.get(f"/v1/users/{user_id}", headers=admin_headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "tag:taskapi.dev,2026:problem/not-found"


def test_list_defaults_to_newest_first_with_envelope_and_link_header(
    client: TestClient, database: Database
) -> None:
    created = [register_user(client) for _ in range(3)]
    with database.transaction() as session:
        users.promote_to_admin(session=session, email=created[2]["email"])
        created[2]["role"] = "admin"
    headers = bearer(log_in(client, email=created[2]["email"])["access_token"])

    response = client.get("/v1/users?limit=2", headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert [u["id"] for u in body["data"]] == [created[2]["id"], created[1]["id"]]
    assert body["meta"] == {"page": 1, "limit": 2, "total": 3, "pages": 2}
    assert body["data"][0]["role"] == "admin"
    assert body["links"] == {
        "self": "/v1/users?page=1&limit=2&sort=-created_at",
        "first": "/v1/users?page=1&limit=2&sort=-created_at",
        "prev": None,
        "next": "/v1/users?page=2&limit=2&sort=-created_at",
        "last": "/v1/users?page=2&limit=2&sort=-created_at",
    }
    assert response.headers["link"] == (
        '</v1/users?page=1&limit=2&sort=-created_at>; rel="first", '
        '</v1/users?page=2&limit=2&sort=-created_at>; rel="next", '
        '</v1/users?page=2&limit=2&sort=-created_at>; rel="last"'
    )


def test_following_next_links_visits_every_user_exactly_once(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    [register_user(client) for _ in range(7)]
    everyone = client.get("/v1/users?limit=100", headers=admin_headers).json()["data"]

    seen: list[str] = []
    url: str | None = "/v1/users?limit=3&sort=email"
    while url:
        body = client.get(url, headers=admin_headers).json()
        seen.extend(u["email"] for u in body["data"])
        url = body["links"]["next"]

    assert seen == sorted(u["email"] for u in everyone)


@pytest.mark.parametrize("sort", ["email", "-email", "created_at", "-created_at"])
def test_list_sorts_by_each_key(
    client: TestClient, admin_headers: dict[str, str], sort: str
) -> None:
    [register_user(client) for _ in range(3)]
    key = sort.lstrip("-")
    everyone = client.get("/v1/users?limit=100", headers=admin_headers).json()["data"]

    data = client.get(f"/v1/users?sort={sort}", headers=admin_headers).json()["data"]

    expected = sorted(everyone, key=lambda u: (u[key], u["id"]), reverse=sort.startswith("-"))
    assert [u["id"] for u in data] == [u["id"] for u in expected]


def test_page_past_the_end_is_empty_and_points_back_to_the_last(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = client.get("/v1/users?page=9&limit=5", headers=admin_headers).json()

    assert body["data"] == []
    assert body["meta"]["pages"] == 1
    assert body["links"]["prev"] == "/v1/users?page=1&limit=5&sort=-created_at"
    assert body["links"]["next"] is None


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ("limit=0", "/query/limit"),
        ("limit=101", "/query/limit"),
        ("limit=abc", "/query/limit"),
        ("page=0", "/query/page"),
        ("page=99999999999999999999", "/query/page"),
        ("sort=name", "/query/sort"),
        ("colour=red", "/query/colour"),
    ],
)
def test_list_rejects_bad_paging_parameters(
    client: TestClient, admin_headers: dict[str, str], query: str, pointer: str
) -> None:
    response = client.get(f"/v1/users?{query}", headers=admin_headers)

    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
