"""Header fields are bounded in number and in size: past either bound the request is refused
with 431 before anything reads it, and nothing changes."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, func, select
from starlette.testclient import TestClient

from taskapi.models import User
from taskapi.settings import Settings
from taskapi.web.headers import over_limits
from tests.utils.factories import user_payload

TOO_LARGE = "tag:taskapi.dev,2026:problem/request-headers-too-large"
DEFAULTS = Settings()


@pytest.mark.parametrize(
    "headers",
    [
        {f"x-filler-{n}": "1" for n in range(DEFAULTS.max_header_count)},
        {"Cookie": "a" * DEFAULTS.max_header_bytes},
        {f"x-filler-{n}": "b" * 1000 for n in range(40)},
    ],
    ids=["too many", "one too large", "too large in all"],
)
def test_header_fields_past_their_bounds_are_431_and_change_nothing(
    client: TestClient, connection: Connection, headers: dict[str, str]
) -> None:
    before = connection.scalar(select(func.count()).select_from(User))
    response = client.post("/v1/users", json=user_payload(), headers=headers)

    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    assert response.json()["type"] == TOO_LARGE
    assert "x-request-id" in response.headers
    assert connection.scalar(select(func.count()).select_from(User)) == before


def test_ordinary_headers_are_well_within_the_bounds(client: TestClient) -> None:
    headers = {"Cookie": "session=" + "c" * 4000, "User-Agent": "probe/1.0"}

    assert client.get("/v1/healthz", headers=headers).status_code == 200


def test_the_bounds_count_every_field_and_every_byte_of_names_and_values() -> None:
    at_count = [(b"n", b"v")] * 10
    at_bytes = [(b"name", b"v" * 96)]  # 100 bytes

    assert over_limits(at_count, max_bytes=1000, max_count=10) is None
    assert over_limits([*at_count, (b"n", b"v")], max_bytes=1000, max_count=10) is not None
    assert over_limits(at_bytes, max_bytes=100, max_count=10) is None
    assert over_limits([(b"name", b"v" * 97)], max_bytes=100, max_count=10) is not None
