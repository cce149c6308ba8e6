"""The application factory: the spec, Connexion, and our extensions, assembled in one place."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

from taskapi.db import Database
from taskapi.services.passwords import use_password_profile
from taskapi.settings import Settings
from taskapi.web.problems import register_problem_handlers
from taskapi.web.request_context import RequestContextMiddleware
from taskapi.web.routes import AllowedMethods
from taskapi.web.transactions import handler_resolver
from taskapi.web.validation import VALIDATOR_MAP

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "openapi.yaml"


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


def create_app(settings: Settings, *, database: Database | None = None) -> AsyncApp:
    """Build the ASGI app. `database` defaults to one connected to `settings.database_url`."""
    use_password_profile(settings.password_hash_profile)
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
            functools.partial(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes),
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
        resolver=handler_resolver(db),
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATOR_MAP,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, serve_spec=True),
    )
    register_problem_handlers(app, allowed_methods=AllowedMethods(spec))
    return app
