"""The /tasks operations over HTTP, through the real app with response validation on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, text
from starlette.testclient import TestClient

from tests.utils.factories import delete_own_account, register_user, signed_up

Headers = dict[str, str]
MERGE_PATCH = {"content-type": "application/merge-patch+json"}


def create(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/tasks", json={"title": "A task", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def titles(client: TestClient, headers: Headers, query: str) -> list[str]:
    response = client.get(f"/v1/tasks?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [t["title"] for t in response.json()["data"]]


def test_create_answers_201_with_location_etag_and_defaults(
    client: TestClient, user_and_headers: tuple[dict[str, Any], Headers]
) -> None:
    user, headers = user_and_headers

    response = client.post("/v1/tasks", json={"title": "  Write report  "}, headers=headers)

    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    assert response.headers["etag"] == '"1"'
    assert task["title"] == "Write report"
    assert (task["status"], task["priority"], task["tags"]) == ("todo", "medium", [])
    assert task["owner_id"] == user["id"]
    assert task["completed_at"] is None


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"title": "   "}, "/body/title"),
        ({"title": "x" * 201}, "/body/title"),
        ({"title": "Report\n"}, "/body/title"),
        ({"tags": ["urgent\n"]}, "/body/tags/0"),
        ({"status": "later"}, "/body/status"),
        ({"priority": "whenever"}, "/body/priority"),
        ({"due_date": "2026-02-30"}, "/body/due_date"),
        ({"tags": ["Upper"]}, "/body/tags/0"),
        ({"tags": ["a", "a"]}, "/body/tags"),
        ({"tags": [str(n) for n in range(11)]}, "/body/tags"),
        ({"description": "d" * 10_001}, "/body/description"),
        ({"owner_id": "someone-else"}, "/body/owner_id"),
    ],
)
def test_create_rejects_each_invalid_field(
    client: TestClient, user_headers: Headers, fields: dict[str, Any], pointer: str
) -> None:
    response = client.post("/v1/tasks", json={"title": "ok", **fields}, headers=user_headers)

    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]


def test_get_answers_etag_and_304_for_a_matching_if_none_match(
    client: TestClient, user_headers: Headers
) -> None:
    task = create(client, user_headers)

    fresh = client.get(f"/v1/tasks/{task['id']}", headers=user_headers)
    cached = client.get(
        f"/v1/tasks/{task['id']}", headers={**user_headers, "If-None-Match": fresh.headers["etag"]}
    )

    assert fresh.status_code == 200
    assert fresh.json() == task
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == fresh.headers["etag"]


def test_patch_is_a_merge_patch_that_sets_and_clears_completed_at(
    client: TestClient, user_headers: Headers
) -> None:
    task = create(client, user_headers, description="notes", due_date="2026-12-31")
    url, headers = f"/v1/tasks/{task['id']}", {**user_headers, **MERGE_PATCH}

    done = client.patch(url, json={"status": "done", "description": None}, headers=headers)
    reopened = client.patch(url, json={"status": "in_progress"}, headers=headers)

    assert done.status_code == 200
    assert done.json()["completed_at"] is not None
    assert done.json()["description"] is None
    assert done.json()["due_date"] == "2026-12-31"
    assert done.headers["etag"] == '"2"'
    assert reopened.json()["completed_at"] is None


def test_two_clients_editing_one_task_the_second_gets_412(
    client: TestClient, user_headers: Headers
) -> None:
    task = create(client, user_headers)
    url = f"/v1/tasks/{task['id']}"
    read_by_both = client.get(url, headers=user_headers).headers["etag"]
    headers = {**user_headers, **MERGE_PATCH, "If-Match": read_by_both}

    first = client.patch(url, json={"title": "First"}, headers=headers)
    second = client.patch(url, json={"title": "Second"}, headers=headers)

    assert first.status_code == 200
    assert second.status_code == 412
    assert second.json()["type"] == "tag:taskapi.dev,2026:problem/precondition-failed"
    assert client.get(url, headers=user_headers).json()["title"] == "First"


@pytest.mark.parametrize("if_match", ['"99"', "garbage", 'W/"1"'])
def test_delete_with_a_stale_or_foreign_if_match_is_412_and_deletes_nothing(
    client: TestClient, user_headers: Headers, if_match: str
) -> None:
    task = create(client, user_headers)
    url = f"/v1/tasks/{task['id']}"

    response = client.delete(url, headers={**user_headers, "If-Match": if_match})

    assert response.status_code == 412
    assert client.get(url, headers=user_headers).status_code == 200


def test_delete_with_the_current_etag_or_none_deletes(
    client: TestClient, user_headers: Headers
) -> None:
    first, second = create(client, user_headers), create(client, user_headers)

    matched = client.delete(f"/v1/tasks/{first['id']}", headers={**user_headers, "If-Match": '"1"'})
    unconditional = client.delete(f"/v1/tasks/{second['id']}", headers=user_headers)

    assert matched.status_code == unconditional.status_code == 204
    assert client.get(f"/v1/tasks/{first['id']}", headers=user_headers).status_code == 404


def test_idempotent_retry_replays_the_first_response_and_creates_one_task(
    client: TestClient, user_headers: Headers
) -> None:
    headers = {**user_headers, "Idempotency-Key": "retry-1"}
    body = {"title": "Pay invoice", "tags": ["money"]}

    first = client.post("/v1/tasks", json=body, headers=headers)
    retry = client.post(
        "/v1/tasks", json={"tags": ["money"], "title": "Pay invoice"}, headers=headers
    )

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert titles(client, user_headers, "limit=100") == ["Pay invoice"]


def test_idempotency_key_with_another_body_is_422(
    client: TestClient, user_headers: Headers
) -> None:
    headers = {**user_headers, "Idempotency-Key": "retry-2"}
    client.post("/v1/tasks", json={"title": "One"}, headers=headers)

    response = client.post("/v1/tasks", json={"title": "Two"}, headers=headers)

    assert response.status_code == 422
    assert response.json()["type"] == "tag:taskapi.dev,2026:problem/idempotency-key-reused"
    assert titles(client, user_headers, "limit=100") == ["One"]


def test_idempotency_keys_are_per_user(client: TestClient, user_headers: Headers) -> None:
    _, other = signed_up(client)
    body = {"title": "Same"}

    mine = client.post("/v1/tasks", json=body, headers={**user_headers, "Idempotency-Key": "k"})
    theirs = client.post("/v1/tasks", json=body, headers={**other, "Idempotency-Key": "k"})

    assert mine.json()["id"] != theirs.json()["id"]


def test_other_users_tasks_are_404_like_missing_ones(
    client: TestClient, user_headers: Headers
) -> None:
    _, intruder = signed_up(client)
    task = create(client, user_headers)
    url = f"/v1/tasks/{task['id']}"

    responses = [
        client.get(url, headers=intruder),
        client.patch(url, json={"title": "mine now"}, headers={**intruder, **MERGE_PATCH}),
        client.delete(url, headers=intruder),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    missing = client.get("/v1/tasks/01936f3c-9a10-7c3e-8f00-1a2b3c4d5e6f", headers=intruder)
    assert {r.json()["detail"] for r in responses} == {missing.json()["detail"]}
    assert titles(client, intruder, "limit=100") == []
    assert client.get(url, headers=user_headers).json()["title"] == "A task"


def test_admin_lists_another_users_tasks_and_users_may_not(
    client: TestClient, admin_headers: Headers, user_and_headers: tuple[dict[str, Any], Headers]
) -> None:
    user, headers = user_and_headers
    create(client, headers, title="Theirs")

    as_admin = titles(client, admin_headers, f"owner_id={user['id']}")
    as_user = client.get(f"/v1/tasks?owner_id={register_user(client)['id']}", headers=headers)

    assert as_admin == ["Theirs"]
    assert as_user.status_code == 403


@pytest.fixture
def catalogue(client: TestClient, user_headers: Headers) -> Headers:
    """Four tasks with distinct values for every filter and sort."""
    create(
        client,
        user_headers,
        title="Alpha report",
        priority="low",
        status="todo",
        due_date="2026-01-10",
        tags=["work"],
    )
    create(
        client,
        user_headers,
        title="beta shopping",
        priority="urgent",
        status="done",
        due_date="2026-03-01",
        tags=["home", "errand"],
    )
    create(
        client,
        user_headers,
        title="Gamma 100% done",
        priority="high",
        status="in_progress",
        tags=["work", "errand"],
    )
    create(
        client,
        user_headers,
        title="delta_report",
        priority="medium",
        status="todo",
        due_date="2026-02-15",
    )
    return user_headers


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=todo", {"Alpha report", "delta_report"}),
        ("status=todo&status=done", {"Alpha report", "beta shopping", "delta_report"}),
        ("priority=urgent", {"beta shopping"}),
        ("tag=errand", {"beta shopping", "Gamma 100% done"}),
        ("tag=err", set()),
        ("due_before=2026-02-15", {"Alpha report"}),
        ("due_after=2026-01-10", {"beta shopping", "delta_report"}),
        ("q=REPORT", {"Alpha report", "delta_report"}),
        ("q=100%25", {"Gamma 100% done"}),
        ("q=_", {"delta_report"}),
        ("status=todo&tag=work", {"Alpha report"}),
    ],
)
def test_each_filter_narrows_the_list(
    client: TestClient, catalogue: Headers, query: str, expected: set[str]
) -> None:
    assert set(titles(client, catalogue, query)) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("title", ["Alpha report", "Gamma 100% done", "beta shopping", "delta_report"]),
        ("priority", ["Alpha report", "delta_report", "Gamma 100% done", "beta shopping"]),
        ("-priority", ["beta shopping", "Gamma 100% done", "delta_report", "Alpha report"]),
        ("due_date", ["Alpha report", "delta_report", "beta shopping", "Gamma 100% done"]),
        ("-due_date", ["Gamma 100% done", "beta shopping", "delta_report", "Alpha report"]),
        ("created_at", ["Alpha report", "beta shopping", "Gamma 100% done", "delta_report"]),
        ("-created_at", ["delta_report", "Gamma 100% done", "beta shopping", "Alpha report"]),
    ],
)
def test_each_sort_orders_the_list(
    client: TestClient, catalogue: Headers, sort: str, expected: list[str]
) -> None:
    assert titles(client, catalogue, f"sort={sort}") == expected


def test_updated_at_sort_follows_the_latest_change(client: TestClient, catalogue: Headers) -> None:
    oldest = titles(client, catalogue, "sort=created_at")[0]
    task = next(
        t for t in client.get("/v1/tasks", headers=catalogue).json()["data"] if t["title"] == oldest
    )
    client.patch(
        f"/v1/tasks/{task['id']}", json={"priority": "high"}, headers={**catalogue, **MERGE_PATCH}
    )

    assert titles(client, catalogue, "sort=-updated_at")[0] == oldest


def _walk_pages(client: TestClient, headers: Headers, url: str | None) -> list[str]:
    seen: list[str] = []
    while url:
        body = client.get(url, headers=headers).json()
        seen.extend(t["id"] for t in body["data"])
        url = body["links"]["next"]
    return seen


def test_page_walk_and_cursor_walk_each_visit_every_task_once(
    client: TestClient, user_headers: Headers
) -> None:
    ids = {create(client, user_headers, title=f"t{n:02}")["id"] for n in range(11)}

    by_page = _walk_pages(client, user_headers, "/v1/tasks?limit=4&sort=title")
    by_cursor = _walk_pages(client, user_headers, "/v1/tasks?limit=4&sort=title&cursor=")

    assert len(by_page) == len(by_cursor) == 11
    assert set(by_page) == set(by_cursor) == ids
    assert by_page == by_cursor


def test_cursor_walk_neither_repeats_nor_skips_when_tasks_come_and_go(
    client: TestClient, user_headers: Headers
) -> None:
    for n in range(6):
        create(client, user_headers, title=f"t{n}")
    first = client.get("/v1/tasks?limit=3&sort=title&cursor=", headers=user_headers).json()
    # Between the pages: one task is added after the cursor, one before it is deleted.
    added = create(client, user_headers, title="t9")
    client.delete(f"/v1/tasks/{first['data'][0]['id']}", headers=user_headers)

    rest = _walk_pages(client, user_headers, first["links"]["next"])

    seen = [t["title"] for t in first["data"]] + [
        client.get(f"/v1/tasks/{i}", headers=user_headers).json()["title"] for i in rest
    ]
    assert seen == ["t0", "t1", "t2", "t3", "t4", "t5", "t9"]
    assert added["id"] in rest


def test_cursor_slices_have_their_own_envelope(client: TestClient, user_headers: Headers) -> None:
    for n in range(3):
        create(client, user_headers, title=f"t{n}")

    body = client.get("/v1/tasks?limit=2&status=todo&cursor=", headers=user_headers).json()

    assert body["mode"] == "cursor"
    assert body["meta"] == {"limit": 2}
    assert body["links"]["self"] == "/v1/tasks?status=todo&sort=-created_at&limit=2&cursor="
    assert body["links"]["next"].startswith(
        "/v1/tasks?status=todo&sort=-created_at&limit=2&cursor="
    )


def test_list_mode_names_the_shape_so_clients_need_not_guess(
    client: TestClient, user_headers: Headers
) -> None:
    create(client, user_headers, title="one")

    paged = client.get("/v1/tasks?limit=1", headers=user_headers).json()
    sliced = client.get("/v1/tasks?limit=1&cursor=", headers=user_headers).json()

    assert (paged["mode"], set(paged["meta"])) == ("page", {"page", "limit", "total", "pages"})
    assert (sliced["mode"], set(sliced["meta"])) == ("cursor", {"limit"})


@pytest.mark.parametrize(
    "query",
    ["page=1&cursor=", "cursor=not-a-real-cursor", "limit=2&cursor={cursor}&sort=title"],
    ids=["page-and-cursor", "forged-cursor", "cursor-from-another-sort"],
)
def test_bad_cursor_use_is_400(client: TestClient, user_headers: Headers, query: str) -> None:
    for n in range(3):
        create(client, user_headers, title=f"t{n}")
    issued = client.get("/v1/tasks?limit=2&cursor=", headers=user_headers).json()["links"]["next"]
    cursor = issued.rsplit("cursor=", 1)[1]

    response = client.get(f"/v1/tasks?{query.format(cursor=cursor)}", headers=user_headers)

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/query/cursor"


def test_tasks_need_a_token(client: TestClient) -> None:
    assert client.get("/v1/tasks").status_code == 401
    assert client.post("/v1/tasks", json={"title": "x"}).status_code == 401


def test_deleting_the_account_deletes_its_tasks(
    client: TestClient, admin_headers: Headers, user_and_headers: tuple[dict[str, Any], Headers]
) -> None:
    user, headers = user_and_headers
    create(client, headers)

    delete_own_account(client, headers)

    assert client.get(f"/v1/tasks?owner_id={user['id']}", headers=admin_headers).status_code == 404


@pytest.mark.parametrize(
    "sort_key", ["created_at", "updated_at", "due_date", "priority_rank", "title"]
)
def test_listing_uses_the_owner_and_sort_key_index_on_postgresql(
    connection: Connection, sort_key: str
) -> None:
    if connection.dialect.name != "postgresql":
        pytest.skip("the query plan is PostgreSQL's")
    # A test table is tiny (and its statistics depend on what ran before), so tell the planner
    # that scanning it whole, or sorting what an index found, is not an option: only an index
    # that gives both the owner's rows and their order is left.
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    connection.execute(text("SET LOCAL enable_sort = off"))
    plan = (
        connection.execute(
            text(
                f"EXPLAIN SELECT * FROM tasks WHERE owner_id = :owner "  # noqa: S608 - fixed names
                f"ORDER BY {sort_key}, id LIMIT 20"
            ),
            {"owner": "01936f3c-8f5e-7b7a-9c1d-2f0e4a5b6c7d"},
        )
        .scalars()
        .all()
    )

    assert f"ix_tasks_owner_id_{sort_key}_id" in "\n".join(plan)
