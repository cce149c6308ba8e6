"""Concurrent requests on committed data: what the per-test rolled-back transaction cannot show.

These tests commit for real, so they register a user of their own and delete it (and with it,
by cascade, everything it owns) at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.utils.factories import delete_own_account, signed_up

CONCURRENT_REQUESTS = 8


@pytest.fixture
def owner_headers(committing_client: TestClient) -> Iterator[dict[str, str]]:
    _, headers = signed_up(committing_client)
    yield headers
    delete_own_account(committing_client, headers)


def test_concurrent_creates_with_one_idempotency_key_create_one_task(
    committing_client: TestClient, owner_headers: dict[str, str]
) -> None:
    headers = {**owner_headers, "Idempotency-Key": "concurrent-create"}

    def create(_: int) -> Any:
        return committing_client.post("/v1/tasks", json={"title": "Once"}, headers=headers)

    with ThreadPoolExecutor(max_workers=CONCURRENT_REQUESTS) as pool:
        responses = list(pool.map(create, range(CONCURRENT_REQUESTS)))

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    listing = committing_client.get("/v1/tasks", headers=owner_headers).json()
    assert listing["meta"]["total"] == 1


def test_concurrent_edits_with_one_etag_let_exactly_one_win(
    committing_client: TestClient, owner_headers: dict[str, str]
) -> None:
    created = committing_client.post(
        "/v1/tasks", json={"title": "Contended"}, headers=owner_headers
    )
    url, etag = f"/v1/tasks/{created.json()['id']}", created.headers["etag"]
    headers = {**owner_headers, "If-Match": etag, "content-type": "application/merge-patch+json"}

    def edit(n: int) -> Any:
        return committing_client.patch(url, json={"title": f"Edit {n}"}, headers=headers)

    with ThreadPoolExecutor(max_workers=CONCURRENT_REQUESTS) as pool:
        responses = list(pool.map(edit, range(CONCURRENT_REQUESTS)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (CONCURRENT_REQUESTS - 1)
    winner = next(r for r in responses if r.status_code == 200).json()["title"]
    assert committing_client.get(url, headers=owner_headers).json()["title"] == winner
