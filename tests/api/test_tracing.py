"""Traces, in process: the SDK's in-memory exporter behind the real app (taskapi.web.tracing)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database
from taskapi.services import users
from taskapi.settings import Settings
from taskapi.web.tracing import tracing_configured
from tests.utils.factories import signed_up
from tests.utils.operations import operation_id

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def traced(settings: Settings, database: Database, exporter: InMemorySpanExporter) -> TestClient:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return create_app(settings, database=database, tracer_provider=provider).test_client()


@pytest.fixture
def traced_client(
    settings: Settings, database: Database, exporter: InMemorySpanExporter
) -> Iterator[TestClient]:
    with traced(settings, database, exporter) as client:
        yield client


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


def test_incoming_traceparent_is_continued_and_statements_are_its_children(
    traced_client: TestClient, exporter: InMemorySpanExporter
) -> None:
    _, headers = signed_up(traced_client)
    exporter.clear()

    response = traced_client.get(
        "/v1/users/me", headers={**headers, "traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    )

    assert response.status_code == 200
    (server,) = server_spans(exporter)
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_SPAN_ID
    assert server.context.trace_state.get("vendor") == "1"
    statements = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert statements, "no database span"
    assert all(s.context.trace_id == server.context.trace_id for s in statements)
    assert all(s.parent is not None for s in statements)
    assert {s.parent.span_id for s in statements if s.parent} == {server.context.span_id}


def test_redis_calls_of_the_rate_limit_are_children_of_the_server_span(
    settings: Settings, database: Database, exporter: InMemorySpanExporter
) -> None:
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("needs TEST_REDIS_URL (make test sets it in CI)")
    with traced(dataclasses.replace(settings, redis_url=redis_url), database, exporter) as client:
        client.get("/v1/users/me", headers={"traceparent": TRACEPARENT})

    (server,) = server_spans(exporter)
    calls = [s for s in exporter.get_finished_spans() if s.attributes.get("db.system") == "redis"]
    assert calls, "no Redis span"
    assert {s.context.trace_id for s in calls} == {server.context.trace_id}
    assert {s.parent.span_id for s in calls if s.parent} == {server.context.span_id}


def test_server_span_is_named_by_route_and_operation_with_status_and_user_id(
    traced_client: TestClient, exporter: InMemorySpanExporter
) -> None:
    user, headers = signed_up(traced_client)
    exporter.clear()

    traced_client.get(f"/v1/users/{user['id']}", headers=headers)

    (server,) = server_spans(exporter)
    get_user = operation_id("GET", "/users/{user_id}")
    assert server.name == f"GET /v1/users/{{user_id}} {get_user}"
    attributes = dict(server.attributes or {})
    assert attributes["http.route"] == "/v1/users/{user_id}"
    assert attributes["taskapi.operation_id"] == get_user
    assert attributes["http.status_code"] == 200
    assert attributes["user.id"] == str(user["id"])
    token = headers["Authorization"].removeprefix("Bearer ")
    assert not any(token in str(value) for value in attributes.values())


def test_a_request_without_traceparent_starts_a_trace(
    traced_client: TestClient, exporter: InMemorySpanExporter
) -> None:
    traced_client.get("/v1/users/me")

    (server,) = server_spans(exporter)
    assert server.parent is None
    assert server.context.trace_id != int(TRACE_ID, 16)


def test_problem_response_records_its_problem_type(
    traced_client: TestClient, exporter: InMemorySpanExporter
) -> None:
    traced_client.get("/v1/users/me")  # no token: 401

    (server,) = server_spans(exporter)
    assert dict(server.attributes or {})["taskapi.problem.type"] == "unauthorized"


def test_problem_type_is_recorded_with_metrics_switched_off(
    settings: Settings, database: Database, exporter: InMemorySpanExporter
) -> None:
    unmetered = dataclasses.replace(settings, metrics_enabled=False)
    with traced(unmetered, database, exporter) as client:
        client.get("/v1/users/me")

    (server,) = server_spans(exporter)
    assert dict(server.attributes or {})["taskapi.problem.type"] == "unauthorized"


def test_unhandled_error_records_the_exception(
    traced_client: TestClient,
    exporter: InMemorySpanExporter,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(**_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(users, "get", explode)
    exporter.clear()

    response = traced_client.get("/v1/users/anything", headers=admin_headers)

    assert response.status_code == 500
    (server,) = server_spans(exporter)
    assert server.status.status_code is StatusCode.ERROR
    (event,) = [e for e in server.events if e.name == "exception"]
    assert dict(event.attributes or {})["exception.type"] == "RuntimeError"
    assert dict(server.attributes or {})["taskapi.problem.type"] == "internal-error"


def test_log_records_of_a_traced_request_carry_its_trace_and_span_ids(
    traced_client: TestClient, exporter: InMemorySpanExporter, json_logs: Any
) -> None:
    response = traced_client.get("/v1/users/me", headers={"traceparent": TRACEPARENT})

    (server,) = server_spans(exporter)
    (access,) = [r for r in json_logs() if r["logger"] == "taskapi.access"]
    assert access["request_id"] == response.headers["x-request-id"]
    assert access["trace_id"] == TRACE_ID
    assert access["span_id"] == format(server.context.span_id, "016x")


def test_probes_and_scrapes_make_no_traces(
    traced_client: TestClient, exporter: InMemorySpanExporter
) -> None:
    traced_client.get("/v1/healthz")
    traced_client.get("/v1/readyz")  # its statements neither: no orphan spans

    assert exporter.get_finished_spans() == ()


def test_untraced_app_logs_no_trace_ids(client: TestClient, json_logs: Any) -> None:
    client.get("/v1/users/me", headers={"traceparent": TRACEPARENT})

    (access,) = [r for r in json_logs() if r["logger"] == "taskapi.access"]
    assert "trace_id" not in access


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "taskapi"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_off_unless_otel_variables_configure_an_exporter(
    environ: dict[str, str], on: bool
) -> None:
    assert tracing_configured(environ) is on


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
)
def test_an_exporter_taskapi_cannot_honour_fails_the_start(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="taskapi"):
        tracing_configured(environ)
