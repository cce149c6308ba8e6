"""The application factory: the spec, Connexion, and our extensions, assembled in one place."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.options import SwaggerUIOptions
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from taskapi.db import Database
from taskapi.services.auth import AuthPolicy
from taskapi.services.credential_throttle import CredentialLimits, CredentialThrottle
from taskapi.services.passwords import Passwords
from taskapi.services.throttle import Throttle, rate_limit, rate_limits
from taskapi.services.tokens import TokenIssuer
from taskapi.serving import DRAIN_STATE_KEY, Drain
from taskapi.settings import Settings
from taskapi.spec import load_spec, spec_text
from taskapi.web.dependencies import handler_resolver
from taskapi.web.deprecation import Deprecations
from taskapi.web.edge import Edge
from taskapi.web.metrics import METRICS_STATE_KEY, Metrics
from taskapi.web.planned import (
    PlannedAsyncApp,
    PlannedRequestValidationMiddleware,
    PlannedRouting,
    PlannedSecurityMiddleware,
    SwaggerUIOnItsPaths,
)
from taskapi.web.problems import register_problem_handlers
from taskapi.web.rate_limits import RateLimit
from taskapi.web.request_context import RequestLimits
from taskapi.web.routes import AllowedMethods, base_path
from taskapi.web.security import checking_access_tokens
from taskapi.web.spec_document import ServedSpec
from taskapi.web.tracing import Tracing, operation_routes, provider_from_environment
from taskapi.web.validation import VALIDATOR_MAP


def auth_policy(settings: Settings) -> AuthPolicy:
    throttle = Throttle(settings.redis_url or "memory://", timeout_ms=settings.redis_timeout_ms)
    return AuthPolicy(
        tokens=TokenIssuer(
            secret=settings.signing_secret(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        ),
        throttle=throttle,
        passwords=Passwords(settings.password_hash_profile),
        credentials=CredentialThrottle(
            throttle,
            CredentialLimits(
                per_account_and_client=rate_limits(
                    settings.login_rate_limit_per_account_and_client
                ),
                per_client=rate_limits(settings.login_rate_limit_per_client),
                per_account=rate_limits(settings.login_rate_limit_per_account),
            ),
        ),
        refresh_limit_per_client=rate_limit(settings.refresh_rate_limit_per_client),
        registration_limit_per_client=rate_limit(settings.registration_rate_limit_per_client),
        refresh_grace=timedelta(seconds=settings.refresh_grace_seconds),
    )


def cors(settings: Settings) -> dict[str, Any] | None:
    """Starlette's CORS options; CORS stays off unless origins are configured, and a browser on
    another origin then gets nothing."""
    if not settings.cors_origins:
        return None
    return {
        "allow_origins": list(settings.cors_origins),
        "allow_methods": ["GET", "POST", "PATCH", "DELETE"],
        "allow_headers": [
            "Authorization",
            "Content-Type",
            "If-Match",
            "If-None-Match",
            "Idempotency-Key",
            "X-Request-ID",
        ],
        "expose_headers": [
            "Deprecation",
            "ETag",
            "Link",
            "Location",
            "RateLimit",
            "RateLimit-Policy",
            "Retry-After",
            "Sunset",
            "X-Request-ID",
        ],
    }


def proxy_headers(settings: Settings) -> list[Any]:
    """X-Forwarded-For/-Proto rewrite the client address and scheme only when the peer is one
    of FORWARDED_ALLOW_IPS, so rate limits and logs see the real client and nobody can forge it.
    Outermost, before anything reads the client address."""
    if not settings.forwarded_allow_ips:
        return []
    return [
        functools.partial(ProxyHeadersMiddleware, trusted_hosts=list(settings.forwarded_allow_ips))
    ]


def unthrottled_paths(spec: dict[str, Any]) -> frozenset[str]:
    """Probes and scrapes come often from a few addresses, and liveness must do no I/O."""
    base = base_path(spec)
    return frozenset(f"{base}{path}" for path in ("/healthz", "/readyz", "/metrics"))


def tracing(
    spec: dict[str, Any], provider: TracerProvider | None, *, database: Database, policy: AuthPolicy
) -> Tracing | None:
    """Tracing as the OTEL_* variables configure it (None, off, by default), or into `provider`
    (a test's); its engine and Redis instrumented."""
    owns_provider = provider is None
    provider = provider_from_environment() if provider is None else provider
    if provider is None:
        return None
    traced = Tracing(
        provider,
        routes=operation_routes(spec, base_path(spec)),
        untraced_paths=unthrottled_paths(spec),
        owns_provider=owns_provider,
    )
    traced.instrument_engine(database.engine)
    redis = policy.throttle.redis_client
    if redis is not None:
        traced.instrument_redis(redis)
    return traced


def edge(
    settings: Settings,
    spec: dict[str, Any],
    *,
    policy: AuthPolicy,
    metrics: Metrics,
    state: Mapping[str, Any],
) -> Callable[[ASGIApp], Edge]:
    """Our one layer around Connexion's stack (taskapi.web.edge), built from `spec`."""
    return functools.partial(
        Edge,
        limits=RequestLimits(
            max_body_bytes=settings.max_body_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
        ),
        rate_limit=RateLimit(
            throttle=policy.throttle,
            limit=rate_limit(settings.rate_limit),
            metrics=metrics,
            exempt_paths=unthrottled_paths(spec),
        ),
        deprecations=Deprecations(spec),
        documents=ServedSpec(text=spec_text(), document=load_spec(), base_path=base_path(spec)),
        metrics=metrics if metrics.enabled else None,
        state=state,
        cors=cors(settings),
    )


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    tracer_provider: TracerProvider | None = None,
) -> PlannedAsyncApp:
    """Build the ASGI app. `database` defaults to one connected to `settings.database_url`;
    spans go to `tracer_provider` if given, else where OTEL_* says, else nowhere."""
    policy = auth_policy(settings)
    db = (
        database
        if database is not None
        else Database.connect(settings.database_url, pool=settings.pool)
    )
    spec = load_spec()
    metrics = Metrics(
        multiprocess_dir=settings.prometheus_multiproc_dir,
        token=settings.metrics_token,
        enabled=settings.metrics_enabled,
    )
    traced = tracing(spec, tracer_provider, database=db, policy=policy)
    drain = Drain(settings.drain_seconds)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        drain.install()
        # Pool gauges of the pool this app owns (a test's shared engine is not its own).
        samples = metrics.enabled and database is None
        sampler = asyncio.create_task(metrics.watch_pool(db.engine)) if samples else None
        yield
        if sampler is not None:
            sampler.cancel()
        if database is None:  # only dispose of what this app created
            db.dispose()
        policy.throttle.close()
        metrics.close()
        if traced is not None:
            traced.close()

    app = PlannedAsyncApp(
        __name__,
        # A handler holds a database connection for its whole call: one thread per connection.
        handler_threads=settings.pool.capacity,
        handler_queue_timeout=settings.handler_queue_timeout,
        lifespan=lifespan,
        # Connexion's stack, with its ServerErrorMiddleware replaced by our edge (outermost of
        # ours, so every response gets a request id, an access record and a body limit).
        middlewares=[
            *proxy_headers(settings),
            # Outside the edge, so that its log records carry the trace's ids.
            *(traced.middleware() if traced is not None else []),
            edge(
                settings,
                spec,
                policy=policy,
                metrics=metrics,
                state={
                    METRICS_STATE_KEY: metrics,
                    DRAIN_STATE_KEY: drain,
                },
            ),
            ExceptionMiddleware,
            SwaggerUIOnItsPaths,
            PlannedRouting,
            PlannedSecurityMiddleware,
            PlannedRequestValidationMiddleware,
            # Response validation is for tests (VALIDATE_RESPONSES); off, it is not in the way.
            *([ResponseValidationMiddleware] if settings.validate_responses else []),
            LifespanMiddleware,
            ContextMiddleware,
        ],
    )
    app.add_api(
        spec,
        resolver=handler_resolver(
            spec,
            database=db,
            policy=policy,
            # Cursors are signed with their own purpose label (services.cursors), so sharing
            # the signing secret with tokens lets neither be passed off as the other.
            cursor_secret=settings.signing_secret().encode(),
        ),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        security_map=checking_access_tokens(policy),
        # The UI reads the spec the edge serves (ServedSpec), at the path Connexion would use.
        swagger_ui_options=SwaggerUIOptions(swagger_ui=settings.docs_ui_enabled, serve_spec=False),
    )
    register_problem_handlers(app, allowed_methods=AllowedMethods(spec))
    return app
