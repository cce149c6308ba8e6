"""Validation costs what the spec allows, whatever the request: sizes are checked before
contents, a 400 lists at most 50 fields, and media types are compared as RFC 9110 says."""

from __future__ import annotations

import time

import orjson
import pytest
from sqlalchemy import Connection, func, select
from starlette.testclient import TestClient

from taskapi.models import Task, User
from taskapi.web.problems import MAX_FIELD_ERRORS
from tests.utils.factories import user_payload

VALIDATION_ERROR = "tag:taskapi.dev,2026:problem/validation-error"
# Far above the milliseconds these take, far below the seconds they took when they backtracked.
SECONDS = 1.0


def _users(connection: Connection) -> int:
    return connection.scalar(select(func.count()).select_from(User)) or 0


@pytest.mark.parametrize(
    "content_type",
    [
        "APPLICATION/JSON",
        "Application/Json; Charset=UTF-8",
        "application/json ; charset=utf-8",
        'application/json; charset="utf-8"',
    ],
)
def test_media_types_are_case_insensitive_and_still_validated(
    client: TestClient, connection: Connection, content_type: str
) -> None:
    before = _users(connection)
    refused = client.post(
        "/v1/users", content=b'{"email": "x@example.com"}', headers={"Content-Type": content_type}
    )
    accepted = client.post(
        "/v1/users",
        content=orjson.dumps(user_payload()),
        headers={"Content-Type": content_type},
    )

    assert refused.status_code == 400, refused.text
    assert refused.json()["type"] == VALIDATION_ERROR
    assert {e["pointer"] for e in refused.json()["errors"]} >= {"/body/name", "/body/password"}
    assert accepted.status_code == 201, accepted.text
    assert _users(connection) == before + 1


def test_an_upper_case_merge_patch_is_applied_as_json(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.patch(
        "/v1/users/me",
        content=b'{"name": "Grace"}',
        headers={**user_headers, "Content-Type": "Application/Merge-Patch+JSON"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Grace"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "a" * 60_000 + "\x01"),
        ("email", "a@" + "." * 60_000 + "\x01"),
        ("name", " " * 60_000 + "\x01"),
    ],
)
def test_a_long_string_is_refused_for_its_length_at_once(
    client: TestClient, field: str, value: str
) -> None:
    started = time.monotonic()
    response = client.post("/v1/users", json=user_payload(**{field: value}))
    elapsed = time.monotonic() - started

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"pointer": f"/body/{field}", "message": response.json()["errors"][0]["message"]}
    ]
    assert "at most" in response.json()["errors"][0]["message"]
    assert elapsed < SECONDS


def test_an_array_past_max_items_is_refused_without_comparing_its_items(
    client: TestClient, user_headers: dict[str, str], connection: Connection
) -> None:
    tags = [{"tag": n, "more": [n] * 5} for n in range(5_000)]
    started = time.monotonic()
    response = client.post("/v1/tasks", json={"title": "t", "tags": tags}, headers=user_headers)
    elapsed = time.monotonic() - started

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"pointer": "/body/tags", "message": "must have at most 10 items"}
    ]
    assert elapsed < SECONDS
    assert connection.scalar(select(func.count()).select_from(Task)) == 0


def test_an_array_at_max_items_still_has_each_item_checked(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    tags = [{"tag": n} for n in range(10)]
    response = client.post("/v1/tasks", json={"title": "t", "tags": tags}, headers=user_headers)

    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == [
        f"/body/tags/{n}" for n in range(10)
    ]


def test_a_body_of_many_unknown_keys_lists_fifty_and_says_there_were_more(
    client: TestClient, connection: Connection
) -> None:
    body = user_payload() | {f"k{n:06d}": 0 for n in range(20_000)}
    before = _users(connection)
    response = client.post("/v1/users", json=body)

    problem = response.json()
    assert response.status_code == 400
    assert len(problem["errors"]) == MAX_FIELD_ERRORS
    assert problem["more_errors"] is True
    assert problem["detail"] == (
        f"The request has more than {MAX_FIELD_ERRORS} invalid fields; "
        f"the first {MAX_FIELD_ERRORS} are listed."
    )
    assert len(response.content) < 10_000
    assert _users(connection) == before


def test_a_body_of_exactly_fifty_bad_fields_lists_them_all(client: TestClient) -> None:
    body = user_payload() | {f"k{n:02d}": 0 for n in range(MAX_FIELD_ERRORS)}
    problem = client.post("/v1/users", json=body).json()

    assert len(problem["errors"]) == MAX_FIELD_ERRORS
    assert "more_errors" not in problem
    assert problem["detail"] == f"The request has {MAX_FIELD_ERRORS} invalid fields."
