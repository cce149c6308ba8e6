"""Tracing as deployed: `taskapi serve` configured only by OTEL_* variables sends its spans over
OTLP/HTTP to a receiver in this test, which decodes the protobuf (opentelemetry-proto)."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.utils.factories import user_payload
from tests.utils.operations import operation_id
from tests.utils.servers import RunningServer, running_server

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
ARRIVAL_TIMEOUT = 30.0


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint on loopback that keeps every span it is sent, with its service."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.spans: list[tuple[str, Span]] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def of_trace(self, trace_id: str) -> list[tuple[str, Span]]:
        with self.lock:
            return [(service, s) for service, s in self.spans if s.trace_id.hex() == trace_id]


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.server.spans.append((attributes.get("service.name", ""), span))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.shutdown()
    receiver.server_close()


@pytest.fixture(scope="module")
def traced_server(
    ops_database_url: str, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with running_server(
        database_url=ops_database_url,
        workdir=tmp_path_factory.mktemp("traced-server"),
        workers=1,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "taskapi-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: spans leave at once, not every 5 s
            "LOG_LEVEL": "INFO",
        },
    ) as server:
        yield server


def wait_for_spans(receiver: Receiver, trace_id: str, kinds: set[int]) -> list[Span]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while time.monotonic() < deadline:
        spans = [span for _, span in receiver.of_trace(trace_id)]
        if kinds <= {span.kind for span in spans}:
            return spans
        time.sleep(0.1)
    raise TimeoutError(f"no spans of kinds {kinds} for trace {trace_id}: {receiver.spans}")


def test_a_request_with_traceparent_sends_its_server_and_database_spans_over_otlp(
    traced_server: RunningServer, receiver: Receiver
) -> None:
    response = httpx.post(
        f"{traced_server.base_url}/v1/users",
        json=user_payload(email=f"{uuid.uuid4().hex}@example.com"),
        headers={"traceparent": TRACEPARENT},
        timeout=10,
    )
    assert response.status_code == 201

    spans = wait_for_spans(receiver, TRACE_ID, {Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT})

    (server,) = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert server.parent_span_id.hex() == "b7ad6b7169203331"
    assert server.name == f"POST /v1/users {operation_id('POST', '/users')}"
    attributes = {a.key: a.value for a in server.attributes}
    assert attributes["http.status_code"].int_value == 201
    statements = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert {s.parent_span_id for s in statements} == {server.span_id}
    assert {service for service, _ in receiver.of_trace(TRACE_ID)} == {"taskapi-under-test"}


def test_the_log_records_of_that_request_carry_its_trace_id(
    traced_server: RunningServer, receiver: Receiver
) -> None:
    trace_id = "1" * 32
    response = httpx.get(
        f"{traced_server.base_url}/v1/nowhere",
        headers={"traceparent": f"00-{trace_id}-{'2' * 16}-01"},
        timeout=10,
    )
    (server,) = [
        s
        for s in wait_for_spans(receiver, trace_id, {Span.SPAN_KIND_SERVER})
        if s.kind == Span.SPAN_KIND_SERVER
    ]

    records = [
        json.loads(line) for line in traced_server.log().splitlines() if line.startswith("{")
    ]
    of_request = [r for r in records if r.get("request_id") == response.headers["x-request-id"]]
    assert of_request, "no log record of the request"
    assert {r.get("trace_id") for r in of_request} == {trace_id}
    assert any(r.get("span_id") == server.span_id.hex() for r in of_request)
