"""OpenTelemetry tracing: off unless the standard OTEL_* variables ask for it.

On, each request gets a server span (continuing an incoming W3C `traceparent`/`tracestate`),
named by its route and operationId and carrying the status, the user id, the problem type of a
problem answer and the exception of an unhandled error; every SQL statement and every Redis call
of the request is a child span. Spans leave over OTLP/HTTP (protobuf) in batches from a thread of
the SDK's own. Everything else is the SDK's reading of the environment: `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_EXPORTER_OTLP_*`, `OTEL_BSP_*`.

Off, nothing here is installed: no middleware, no engine listeners, no Redis wrappers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
)
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskapi.web.metrics import operation_label
from taskapi.web.outcome import Outcome, begin_outcome, end_outcome

DEFAULT_SERVICE_NAME = "taskapi"
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_SUPPORTED_PROTOCOL = "http/protobuf"
_NOT_SAMPLED = NonRecordingSpan(
    SpanContext(trace_id=1, span_id=1, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
)


def tracing_configured(environ: Mapping[str, str]) -> bool:
    """On when an OTLP endpoint or `OTEL_TRACES_EXPORTER=otlp` is set; `OTEL_SDK_DISABLED=true`
    and `OTEL_TRACES_EXPORTER=none` turn it off whatever else is set. A value taskapi cannot
    honour (another exporter or protocol) fails the start rather than dropping every span."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if exporter not in ("", "otlp"):
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter!r}: taskapi exports traces by OTLP")
    if not exporter and not any(environ.get(name) for name in _ENDPOINTS):
        return False
    protocol = next((environ[name] for name in _PROTOCOLS if environ.get(name)), None)
    if protocol not in (None, _SUPPORTED_PROTOCOL):
        raise ValueError(f"OTLP protocol {protocol!r}: taskapi sends {_SUPPORTED_PROTOCOL} only")
    return True


def provider_from_environment(environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """The tracer provider the environment configures, or None when tracing is off."""
    if not tracing_configured(environ):
        return None
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    # The sampler comes from OTEL_TRACES_SAMPLER (parent-based, always on, by default).
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class Tracing:
    """The app's tracing: its middleware, and the instrumentation of its engine and Redis."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        routes: Mapping[str, str],
        untraced_paths: frozenset[str],
        owns_provider: bool = True,
    ) -> None:
        self.provider = provider
        self._routes = routes
        # Matched (re.search) against the whole URL, scheme and host included.
        self._untraced = ",".join(f"{path}$" for path in sorted(untraced_paths))
        self._owns_provider = owns_provider
        self._redis_clients: list[Any] = []

    def middleware(self) -> list[Any]:
        """The layers, outermost first: the SDK's server span, then its naming."""

        def server_span(app: ASGIApp) -> ASGIApp:
            return OpenTelemetryMiddleware(
                app,
                excluded_urls=os.environ.get("OTEL_PYTHON_ASGI_EXCLUDED_URLS", self._untraced),
                tracer_provider=self.provider,
                # One span per request, not one more per ASGI message.
                exclude_spans=["receive", "send"],
            )

        def span_details(app: ASGIApp) -> ASGIApp:
            return ServerSpanDetails(app, routes=self._routes)

        return [server_span, span_details]

    def instrument_engine(self, engine: Engine) -> None:
        """Every statement on `engine` a child span (the statement text, never its parameters)."""
        tracer = self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        # It also counts connections by OpenTelemetry metrics; ours are Prometheus's
        # (taskapi.web.metrics), so its meter is the API's no-op one.
        connections = NoOpMeter("taskapi").create_up_down_counter("db.client.connections.usage")
        EngineTracer(tracer, engine, connections)  # type: ignore[no-untyped-call]

    def instrument_redis(self, client: Any) -> None:
        """Every command on `client` a child span (the command name, never its arguments)."""
        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)
        self._redis_clients.append(client)

    def close(self) -> None:
        """Send what is queued and stop (an app's provider only; a test's stays the test's)."""
        for client in self._redis_clients:
            RedisInstrumentor.uninstrument_client(client)
        # The instrumentation keeps its listeners in one list per process: one app per process
        # is how taskapi is served (a test closes its app before building the next traced one).
        EngineTracer.remove_all_event_listeners()  # type: ignore[no-untyped-call]
        if self._owns_provider:
            self.provider.shutdown()


def operation_routes(spec: Mapping[str, Any], base_path: str) -> dict[str, str]:
    """operationId -> the path template that routes to it (`/v1/tasks/{task_id}`)."""
    return {
        operation["operationId"]: f"{base_path}{path}"
        for path, item in spec["paths"].items()
        for operation in item.values()
        if isinstance(operation, Mapping) and "operationId" in operation
    }


class ServerSpanDetails:
    """Names the server span once routing has happened, and records what the answer was, as
    the response starts (routing, authentication and the problem, if any, are known by then)."""

    def __init__(self, app: ASGIApp, *, routes: Mapping[str, str]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if scope["type"] != "http" or not span.is_recording():
            if not span.get_span_context().is_valid:
                # An untraced path (a probe, a scrape): its statements stay untraced too, as
                # children of a trace that is not sampled, rather than traces of their own.
                with trace.use_span(_NOT_SAMPLED):
                    await self.app(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # Begun here, outside the edge, which notes on it and reports it to the metrics too.
        outcome, token = begin_outcome()

        # Before the response starts: the SDK ends the span with the response's last message.
        async def send_described(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._describe(span, scope, outcome)
            await send(message)

        try:
            await self.app(scope, receive, send_described)
        finally:
            end_outcome(token)

    def _describe(self, span: Span, scope: Scope, outcome: Outcome) -> None:
        extensions = scope.get("extensions") or {}
        operation = (extensions.get("connexion_routing") or {}).get("operation_id")
        if operation:
            operation = operation_label(operation)
            route = self.routes.get(operation, scope["path"])
            span.update_name(f"{scope['method']} {route} {operation}")
            span.set_attribute("http.route", route)
            span.set_attribute("taskapi.operation_id", operation)
        # Connexion's security records the token's subject, the user id, and nothing else of it.
        user = (extensions.get("connexion_context") or {}).get("user")
        if user is not None:
            span.set_attribute("user.id", str(user))
        if outcome.problem is not None:
            span.set_attribute("taskapi.problem.type", outcome.problem)
        if outcome.exception is not None:
            span.record_exception(outcome.exception)
            span.set_status(Status(StatusCode.ERROR, type(outcome.exception).__name__))
        if outcome.dependency is not None:
            span.set_attribute("taskapi.dependency.failed", outcome.dependency)
