"""The metrics the alerts and the dashboard read (deploy/prometheus, deploy/grafana), as scraped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database
from taskapi.migrations import upgrade_to_head
from taskapi.settings import Settings
from tests.utils.factories import register_user
from tests.utils.operations import operation_id

WRONG = "not the right password"


def scraped(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/v1/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def own_client(settings: Settings, database: Database) -> Iterator[TestClient]:
    """A client of an app of its own, so that its counters start at zero."""
    throttled = Settings(
        **{**settings.__dict__, "login_rate_limit_per_account_and_client": "2/minute"}
    )
    with create_app(throttled, database=database).test_client() as client:
        yield client


def test_problem_answers_are_counted_by_operation_and_problem_type(own_client: TestClient) -> None:
    own_client.get("/v1/users/me")  # no token
    own_client.get("/v1/nowhere")

    samples = scraped(own_client)

    assert (
        value(
            samples,
            "taskapi_http_problems_total",
            operation=operation_id("GET", "/users/me"),
            type="unauthorized",
        )
        == 1
    )
    assert (
        value(samples, "taskapi_http_problems_total", operation="unrouted", type="not-found") == 1
    )


def test_latency_is_a_histogram_by_operation(own_client: TestClient) -> None:
    own_client.get("/v1/users/me")

    samples = scraped(own_client)

    labels = {"operation": operation_id("GET", "/users/me"), "method": "GET", "status": "401"}
    assert value(samples, "taskapi_http_request_duration_seconds_count", **labels) == 1
    assert value(samples, "taskapi_http_request_duration_seconds_bucket", le="+Inf", **labels) == 1


def test_login_failures_and_credential_delays_are_counted(
    own_client: TestClient, json_logs: Any
) -> None:
    """Counted from the audit records, as logged at the default level (INFO)."""
    user = register_user(own_client, email=f"{uuid.uuid4().hex}@example.com")
    statuses = [
        own_client.post(
            "/v1/auth/token", json={"email": user["email"], "password": WRONG}
        ).status_code
        for _ in range(3)
    ]

    samples = scraped(own_client)

    assert statuses == [401, 401, 429]
    failures = value(samples, "taskapi_audit_events_total", event="login", outcome="failure")
    assert failures == 2
    assert value(samples, "taskapi_credential_delay_seconds_count") == 1
    assert (
        value(
            samples,
            "taskapi_http_problems_total",
            operation=operation_id("POST", "/auth/token"),
            type="too-many-requests",
        )
        == 1
    )


def test_an_unreachable_database_counts_as_a_dependency_failure(settings: Settings) -> None:
    unreachable = Settings(
        **{**settings.__dict__, "database_url": "postgresql+psycopg://nobody@127.0.0.1:9/none"}
    )
    with create_app(unreachable).test_client() as client:
        assert client.get("/v1/readyz").status_code == 503
        samples = scraped(client)

    assert value(samples, "taskapi_dependency_failures_total", dependency="database") == 1


def test_the_wait_for_a_database_connection_is_a_histogram(own_client: TestClient) -> None:
    before = value(scraped(own_client), "taskapi_db_pool_wait_seconds_count")
    own_client.get("/v1/readyz")

    samples = scraped(own_client)

    assert value(samples, "taskapi_db_pool_wait_seconds_count") == before + 1


def test_sqlite_connections_kept_by_handler_threads_are_not_reported_as_a_pool(
    settings: Settings, tmp_path: Path
) -> None:
    # Each handler thread keeps its own SQLite connections (taskapi.db): counted as lent from
    # a pool, they would show a pool always in use, and fuller than its capacity.
    url = f"sqlite:///{tmp_path / 'own.sqlite3'}"
    upgrade_to_head(url)
    on_sqlite = Settings(**{**settings.__dict__, "database_url": url})
    with create_app(on_sqlite).test_client() as client:
        for _ in range(3):
            assert client.get("/v1/readyz").status_code == 200
        samples = scraped(client)

    assert value(samples, "taskapi_db_pool_capacity") == 0
    assert value(samples, "taskapi_db_pool_checked_out") == 0
