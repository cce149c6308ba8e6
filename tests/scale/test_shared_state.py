"""What replicas share is really shared: rate-limit budgets and login throttles (Redis),
idempotency keys, tokens and cursors (PostgreSQL and the one JWT_SECRET); and what each one
sees as the client is the client behind HAProxy, never HAProxy."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import Engine, text

from taskapi.services.throttle import rate_limits
from taskapi.settings import Settings
from tests.scale.clients import client, client_address
from tests.utils.factories import bearer, log_in, signed_up
from tools.replica_set import ReplicaSet

REQUESTS = 30
LOG_WAIT = 10.0
_REMAINING = re.compile(r";r=(\d+)")


def _access_record(cluster: ReplicaSet, request_id: str) -> tuple[str, dict[str, Any]]:
    """The replica that served the request with this id, and its access record there (written
    just after the response is sent, so perhaps a moment after the client has it)."""
    deadline = time.monotonic() + LOG_WAIT
    while time.monotonic() < deadline:
        for replica in cluster.replicas:
            for line in replica.log().splitlines():
                if request_id in line and '"taskapi.access"' in line:
                    return replica.name, json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no replica logged request {request_id}")


def _traced(http: httpx.Client, method: str, url: str, **kwargs: Any) -> tuple[str, httpx.Response]:
    request_id = uuid.uuid4().hex
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": request_id}
    return request_id, http.request(method, url, headers=headers, **kwargs)


def test_one_clients_rate_limit_budget_is_spent_alike_whichever_replica_answers(
    cluster: ReplicaSet,
) -> None:
    with client(cluster.base_url) as http:
        _, headers = signed_up(http)  # type: ignore[arg-type] - an httpx.Client will do
        answers = [_traced(http, "GET", "/v1/users/me", headers=headers) for _ in range(REQUESTS)]

    remaining = [int(_REMAINING.findall(a.headers["ratelimit"])[0]) for _, a in answers]
    served_by = Counter(_access_record(cluster, request_id)[0] for request_id, _ in answers)
    # One budget: each request, on whichever replica, takes one from what the last one left.
    assert remaining == list(range(remaining[0], remaining[0] - REQUESTS, -1))
    assert set(served_by) == {replica.name for replica in cluster.replicas}


def test_login_failures_from_one_client_are_counted_across_replicas(cluster: ReplicaSet) -> None:
    settings = Settings.from_env(cluster.replicas[0].env)
    # The shortest window of each budget the credential throttle counts failures on.
    limits = [
        rate_limits(budget)[0].amount
        for budget in (
            settings.login_rate_limit_per_account_and_client,
            settings.login_rate_limit_per_account,
            settings.login_rate_limit_per_client,
        )
    ]
    with client(cluster.base_url) as http:
        user, _ = signed_up(http)  # type: ignore[arg-type] - an httpx.Client will do
    wrong = {"email": user["email"], "password": "not the password at all"}
    refused_after: int | None = None
    served_by: set[str] = set()
    # Counted per replica, the throttle would let three times as many through.
    with client(cluster.base_url) as http:
        for attempt in range(len(cluster.replicas) * max(limits) + 1):
            request_id, answer = _traced(http, "POST", "/v1/auth/token", json=wrong)
            if answer.status_code == 429:
                refused_after = attempt
                break
            assert answer.status_code == 401
            served_by.add(_access_record(cluster, request_id)[0])

    print(
        f"\nlogin throttle: 429 after {refused_after} failures over {len(served_by)} replicas"
        f" (the shortest windows of its budgets: {limits})"
    )
    assert refused_after is not None
    assert 0 < refused_after <= min(limits)
    assert len(served_by) == min(refused_after, len(cluster.replicas))


def test_one_idempotency_key_sent_to_three_replicas_at_once_creates_one_task(
    cluster: ReplicaSet, scale_database: Engine
) -> None:
    with client(cluster.base_url) as http:
        _, headers = signed_up(http)  # type: ignore[arg-type] - an httpx.Client will do
    title = f"once {uuid.uuid4().hex}"
    headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
    start = threading.Barrier(len(cluster.replicas))
    answers: dict[str, httpx.Response] = {}

    def create(base_url: str) -> None:
        with client(base_url) as http:
            start.wait(timeout=30)
            answers[base_url] = http.post("/v1/tasks", json={"title": title}, headers=headers)

    threads = [threading.Thread(target=create, args=(r.base_url,)) for r in cluster.replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [a.status_code for a in answers.values()] == [201] * len(cluster.replicas)
    assert len({a.json()["id"] for a in answers.values()}) == 1
    with scale_database.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM tasks WHERE title = :title"), {"title": title}
        ).scalar_one()
    assert stored == 1


def test_tokens_and_cursors_issued_by_one_replica_work_on_the_others(
    cluster: ReplicaSet,
) -> None:
    first, second, third = (client(r.base_url) for r in cluster.replicas)
    with first, second, third:
        user, headers = signed_up(first)  # type: ignore[arg-type] - an httpx.Client will do
        for n in range(5):
            assert second.post("/v1/tasks", json={"title": f"t{n}"}, headers=headers).is_success
        tokens = log_in(first, email=user["email"])  # type: ignore[arg-type]
        refreshed = third.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        headers = bearer(refreshed.json()["access_token"])
        titles: list[str] = []
        url = "/v1/tasks?limit=2&sort=title&cursor="
        for http in (first, second, third):  # each slice from the next replica
            page = http.get(url, headers=headers)
            assert page.status_code == 200, page.text
            titles += [task["title"] for task in page.json()["data"]]
            url = page.json()["links"]["next"]

    assert titles == [f"t{n}" for n in range(5)]


def test_replicas_see_the_client_behind_haproxy_never_haproxy_nor_a_forged_header(
    cluster: ReplicaSet,
) -> None:
    address = client_address()
    forged = {"X-Forwarded-For": "203.0.113.7"}
    with client(cluster.base_url, address) as through_proxy:
        proxied = [
            _traced(through_proxy, "GET", "/v1/healthz", headers=forged)[0]
            for _ in cluster.replicas
        ]
    with client(cluster.replicas[0].base_url, address) as direct:
        # Not HAProxy: its header is not believed either.
        direct_id, _ = _traced(direct, "GET", "/v1/healthz", headers=forged)

    records = [_access_record(cluster, request_id) for request_id in proxied]
    assert {record["client"] for _, record in records} == {address}
    assert len({name for name, _ in records}) == len(cluster.replicas)
    assert _access_record(cluster, direct_id)[1]["client"] == address
