"""Handlers for the operational endpoints: liveness, readiness and metrics (all public)."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.services import health
from taskapi.services.auth import AuthPolicy
from taskapi.serving import Drain
from taskapi.web.metrics import Metrics
from taskapi.web.responses import json_reply


async def get_health() -> Response:
    # No I/O at all: "alive" means this process's event loop answers.
    return json_reply({"status": "alive"})


def get_readiness(*, session: Session, auth: AuthPolicy, drain: Drain) -> Response:
    drain.check()  # a replica shutting down leaves rotation before its dependencies are asked
    health.check_ready(session=session, throttle=auth.throttle)
    return json_reply({"status": "ready"})


async def get_metrics(*, metrics: Metrics, authorization: str | None) -> Response:
    return metrics.scrape(authorization)
