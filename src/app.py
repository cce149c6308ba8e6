"""The application factory: the spec, Connexion, and our extensions, assembled in one place."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from connexion import AsyncApp
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from starlette.middleware.cors import CORSMiddleware

from taskapi.db import Database
from taskapi.services.auth import AuthPolicy
from taskapi.services.passwords import use_password_profile
from taskapi.services.throttle import Throttle, rate_limit
from taskapi.services.tokens import TokenIssuer
from taskapi.settings import Settings
from taskapi.web.dependencies import handler_resolver
from taskapi.web.problems import register_problem_handlers
from taskapi.web.rate_limits import RateLimitMiddleware
from taskapi.web.request_context import RequestContextMiddleware
from taskapi.web.routes import AllowedMethods
from taskapi.web.security import AUTH_POLICY_STATE_KEY
from taskapi.web.validation import VALIDATOR_MAP

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "openapi.yaml"


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


def auth_policy(settings: Settings) -> AuthPolicy:
    return AuthPolicy(
        tokens=TokenIssuer(
            secret=settings.signing_secret(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        ),
        throttle=Throttle(settings.redis_url or "memory://"),
        login_limit_per_account=rate_limit(settings.login_rate_limit_per_account),
        login_limit_per_client=rate_limit(settings.login_rate_limit_per_client),
    )


def cors(settings: Settings) -> list[Any]:
    """CORS stays off unless origins are configured: a browser on another origin gets nothing."""
    if not settings.cors_origins:
        return []
    return [
        functools.partial(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Link",
                "Location",
                "RateLimit",
                "RateLimit-Policy",
                "Retry-After",
                "X-Request-ID",
            ],
        )
    ]


def create_app(settings: Settings, *, database: Database | None = None) -> AsyncApp:
    """Build the ASGI app. `database` defaults to one connected to `settings.database_url`."""
    use_password_profile(settings.password_hash_profile)
    policy = auth_policy(settings)
    db = database if database is not None else Database.connect(settings.database_url)
    spec = load_spec()

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        if database is None:  # only dispose of what this app created
            db.dispose()

    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        # Connexion's stack, with its ServerErrorMiddleware replaced by our request context
        # (outermost, so every response gets a request id, an access record and a body limit).
        middlewares=[
            functools.partial(
                RequestContextMiddleware,
                max_body_bytes=settings.max_body_bytes,
                state={AUTH_POLICY_STATE_KEY: policy},
            ),
            *cors(settings),
            functools.partial(
                RateLimitMiddleware,
                throttle=policy.throttle,
                limit=rate_limit(settings.rate_limit),
            ),
            ExceptionMiddleware,
            SwaggerUIMiddleware,
            RoutingMiddleware,
            SecurityMiddleware,
            RequestValidationMiddleware,
            ResponseValidationMiddleware,
            LifespanMiddleware,
            ContextMiddleware,
        ],
    )
    app.add_api(
        spec,
        resolver=handler_resolver(database=db, policy=policy),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, serve_spec=True),
    )
    register_problem_handlers(app, allowed_methods=AllowedMethods(spec))
    return app
