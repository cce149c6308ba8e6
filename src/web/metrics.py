"""Prometheus metrics: the instruments, what each request adds to them, and the exposition.

Everything that can be decided once is decided at start-up: the instruments exist before the
first request, and each (operation, method, status) keeps its labelled children in a dict, as
does each (operation, problem type), so a request costs a dict lookup, a counter, a histogram
and two gauge updates. `taskapi.web.edge` reports each request (`request_began`,
`request_answered`), whichever layer answered it.

With several workers, set PROMETHEUS_MULTIPROC_DIR (prometheus-client's own variable, read when
it is imported): each worker writes its values to files there and a scrape of any worker sums
them all (`taskapi serve` empties the folder before the workers start).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine
from starlette.responses import Response

from taskapi import handlers
from taskapi.errors import AuthenticationError, NotFoundError
from taskapi.web.outcome import Outcome

METRICS_STATE_KEY = "metrics"
UNROUTED = "unrouted"  # requests no operation matched (404s, 405s, refusals before routing)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_LABELS = ("operation", "method", "status")
POOL_SAMPLE_SECONDS = 1.0
_Children = tuple[Any, Any]
_RESOLVED_PREFIX = f"{handlers.__name__}."
AUDIT_LOGGER = "taskapi.audit"  # taskapi.services.audit writes security events there
# Audit events worth a series: the ones on-call alerts and dashboards read.
COUNTED_AUDIT_EVENTS = frozenset({"login", "credentials.delayed", "user.current_password"})
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DELAY_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# `*_created` series double the exposition and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The service's instruments, created once per app."""

    def __init__(
        self, *, multiprocess_dir: str = "", token: str = "", enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self._token = f"Bearer {token}".encode() if token else b""
        self._multiprocess = bool(multiprocess_dir)
        # Instruments live in a registry of their own, so that several apps in one process
        # (tests) never clash; in multiprocess mode their values go to files regardless.
        own = CollectorRegistry()
        if self._multiprocess:
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            self.registry = own
        self.requests = Counter(
            "taskapi_http_requests",
            "HTTP requests answered, by operationId, method and status.",
            HTTP_LABELS,
            registry=own,
        )
        self.latency = Histogram(
            "taskapi_http_request_duration_seconds",
            "Time from the first byte of the request to the last of the response.",
            HTTP_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        # "livesum": the sum over the workers alive now (a stopped worker's files drop out).
        self.in_flight = Gauge(
            "taskapi_http_requests_in_flight",
            "Requests being served now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.pool_checked_out = Gauge(
            "taskapi_db_pool_checked_out",
            "Database connections lent to requests now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.pool_open = Gauge(
            "taskapi_db_pool_connections",
            "Database connections open now (lent, or idle in the pool).",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.pool_capacity = Gauge(
            "taskapi_db_pool_capacity",
            "Most connections the pools may open (pool size plus overflow, per worker).",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.rate_limit_unchecked = Counter(
            "taskapi_rate_limit_unchecked",
            "Requests let through without the general rate limit: its store did not answer.",
            registry=own,
        )
        self.problems = Counter(
            "taskapi_http_problems",
            "Problem responses, by operationId and problem type (the slug of its `type`).",
            ("operation", "type"),
            registry=own,
        )
        self.dependency_failures = Counter(
            "taskapi_dependency_failures",
            "Requests that met a failing dependency: database (unreachable, dropped, timed"
            " out), database_pool (no connection free in time), redis (no answer in time).",
            ("dependency",),
            registry=own,
        )
        self.audit_events = Counter(
            "taskapi_audit_events",
            "Security events of the audit log, by event and outcome (login failures, delays).",
            ("event", "outcome"),
            registry=own,
        )
        self.credential_delays = Histogram(
            "taskapi_credential_delay_seconds",
            "Waits imposed on password checks by the credential throttle (Retry-After).",
            buckets=DELAY_BUCKETS,
            registry=own,
        )
        self.handler_wait = Histogram(
            "taskapi_db_pool_wait_seconds",
            "Time a request waited for a handler thread, which holds a database connection"
            " for the whole call (threads = pool capacity): the wait for a connection.",
            buckets=WAIT_BUCKETS,
            registry=own,
        )
        self._children: dict[tuple[str, str, int], _Children] = {}
        self._problem_children: dict[tuple[str, str], Any] = {}
        self._audit_counter = AuditCounter(self) if enabled else None

    def observe(self, operation: str, method: str, status: int, seconds: float) -> None:
        if method not in KNOWN_METHODS:
            method = "OTHER"  # a client cannot mint new series
        key = (operation, method, status)
        children = self._children.get(key)
        if children is None:
            labels = (operation_label(operation), method, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def request_began(self) -> None:
        self.in_flight.inc()

    def request_answered(
        self, operation: str | None, method: str, status: int, seconds: float, outcome: Outcome
    ) -> None:
        """The end of a request counted by `request_began`: its answer's `status` (500 when no
        response started), and `operation`, the operationId routing resolved (None if none)."""
        self.in_flight.dec()
        operation = operation or UNROUTED
        self.observe(operation, method, status, seconds)
        if outcome.problem is not None:
            self._problem(operation, outcome.problem).inc()
        if outcome.dependency is not None:
            self.dependency_failures.labels(outcome.dependency).inc()
        if outcome.handler_wait is not None:
            self.handler_wait.observe(outcome.handler_wait)

    def _problem(self, operation: str, problem: str) -> Any:
        key = (operation, problem)
        child = self._problem_children.get(key)
        if child is None:  # bounded: operations and problem types are the spec's
            child = self._problem_children[key] = self.problems.labels(
                operation_label(operation), problem
            )
        return child

    async def watch_pool(self, engine: Engine, *, every: float = POOL_SAMPLE_SECONDS) -> None:
        """Sample the pool until cancelled: nothing per request, nothing per scrape (a scrape
        reaches one worker, but the files of every worker are summed)."""
        pool: Any = engine.pool
        if engine.dialect.name == "sqlite" or not hasattr(pool, "checkedout"):
            # SQLite's connections are each kept by a handler thread (taskapi.db), not lent
            # from a pool; and some pools keep no such count.
            return
        self.pool_capacity.set(pool.size() + max(pool._max_overflow, 0))
        while True:
            checked_out, idle = pool.checkedout(), pool.checkedin()
            self.pool_checked_out.set(checked_out)
            self.pool_open.set(checked_out + idle)
            await asyncio.sleep(every)

    def scrape(self, authorization: str | None) -> Response:
        """The exposition in Prometheus text format; AuthenticationError when a token is set
        and the request does not carry it, NotFoundError when metrics are switched off."""
        if not self.enabled:
            raise NotFoundError("Metrics are switched off on this service (METRICS_ENABLED).")
        if self._token and not hmac.compare_digest((authorization or "").encode(), self._token):
            raise AuthenticationError("The metrics need the bearer token set in METRICS_TOKEN.")
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def close(self) -> None:
        """At a worker's exit: its live gauges stop counting towards the sums."""
        if self._audit_counter is not None:
            logging.getLogger(AUDIT_LOGGER).removeHandler(self._audit_counter)
        if self._multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def operation_label(operation: str) -> str:
    """The spec's operationId (`get_user`) for the name routing resolved, not an import path."""
    return operation.removeprefix(_RESOLVED_PREFIX)


class AuditCounter(logging.Handler):
    """Counts the audit log's security events as it is written: the services say what happened
    once, to the audit log, and the metrics follow from it."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.INFO)
        self.metrics = metrics
        logging.getLogger(AUDIT_LOGGER).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event not in COUNTED_AUDIT_EVENTS:
            return
        self.metrics.audit_events.labels(event, str(getattr(record, "outcome", ""))).inc()
        delay = getattr(record, "retry_after", None)
        if event == "credentials.delayed" and isinstance(delay, int | float):
            self.metrics.credential_delays.observe(delay)
