"""Handlers for the operational endpoints: liveness, readiness and metrics (all public)."""

from __future__ import annotations

from connexion import request
from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.services import health
from taskapi.services.auth import AuthPolicy
from taskapi.serving import DRAIN_STATE_KEY, Drain
from taskapi.web.metrics import METRICS_STATE_KEY, Metrics
from taskapi.web.responses import json_reply


async def get_health() -> Response:
    # No I/O at all: "alive" means this process's event loop answers.
    return json_reply({"status": "alive"})


def get_readiness(*, session: Session, auth: AuthPolicy) -> Response:
    drain: Drain = request.scope["state"][DRAIN_STATE_KEY]
    drain.check()  # a replica shutting down leaves rotation before its dependencies are asked
    health.check_ready(session=session, throttle=auth.throttle)
    return json_reply({"status": "ready"})


async def get_metrics() -> Response:
    metrics: Metrics = request.scope["state"][METRICS_STATE_KEY]
    return metrics.scrape(request.headers.get("authorization"))
