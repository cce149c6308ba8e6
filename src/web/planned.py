"""Connexion's per-request layers, planned once per operation at start-up.

Stock Connexion 3.3 redoes, on every request, work whose result depends only on the operation:
the request validator builds a URI parser, a parameter validator, a media-type table and a body
validator; the app rebuilds the handler's decorator chain (four `functools.wraps` and an
`inspect.signature`), parses the parameters and the JSON body a second time, and parses a
form on every request, even a GET; the bearer check reads the token function's signature
twice; and the Swagger UI middleware runs its router over every API request. Each sync
handler then hops to a thread through anyio, whose hop costs more than asyncio's own executor.

The classes below are drop-in subclasses that do that work when the app starts and keep the
per-request path to what depends on the request. Behaviour is Connexion's own: the same
validators (`validation.VALIDATOR_MAP`), the same argument building (`prep_kwargs`), the same
errors. They are installed in one place, `taskapi.app.create_app`; README, "Benchmarks", gives
what each saved.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connexion.apps.abstract import AbstractApp
from connexion.apps.asynchronous import AsyncApi, AsyncApp, AsyncASGIApp
from connexion.datastructures import MediaTypeDict
from connexion.decorators.parameter import (
    prep_kwargs,
    pythonic,
    sanitized,
    unwrap_decorators,
)
from connexion.decorators.response import AsyncResponseDecorator
from connexion.exceptions import UnsupportedMediaTypeProblem
from connexion.frameworks.starlette import Starlette as StarletteFramework
from connexion.http_facts import FORM_CONTENT_TYPES
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.operations import AbstractOperation
from connexion.security import BearerSecurityHandler
from connexion.utils import extract_content_type, inspect_function_arguments, is_nullable
from starlette.types import ASGIApp, Receive, Scope, Send

from taskapi.errors import ServiceUnavailableError
from taskapi.web.media_types import parse_media_type
from taskapi.web.outcome import current_outcome
from taskapi.web.validation import CHECKED_PARAMETERS, PARSED_BODY

# Body validators kept per operation, by (media type, charset).
MAX_CACHED_BODY_VALIDATORS = 8


class _PlannedValidationOperation(RequestValidationOperation):  # type: ignore[misc]
    """Validates one operation's requests with validators built once."""

    def __init__(self, next_app: ASGIApp, **options: Any) -> None:
        super().__init__(next_app, **options)
        operation: AbstractOperation = self._operation
        self._uri_parser = operation.uri_parser_class(
            operation.parameters, operation.body_definition()
        )
        self._parameter_validator = self._validator_map["parameter"](
            operation.parameters,
            uri_parser=self._uri_parser,
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )
        self._consumes = MediaTypeDict([(c.lower(), None) for c in operation.consumes])
        self._body_validators: dict[tuple[str, str], Any] = {}

    def extract_content_type(self, headers: list[tuple[bytes, bytes]]) -> tuple[str, str]:
        """The request's media type, lower-cased, and its charset (RFC 9110): every later
        lookup (accepted types, body validators, the JSON body for the handler) then
        compares like with like."""
        header = extract_content_type(headers)
        if header is None:  # not required: the operation's first type is the best guess
            return (self._operation.consumes or ["application/octet-stream"])[0].lower(), "utf-8"
        media_type = parse_media_type(header)
        return media_type.essence, media_type.charset or "utf-8"

    def validate_mime_type(self, mime_type: str) -> None:
        if self._consumes and mime_type not in self._consumes:
            raise UnsupportedMediaTypeProblem(
                detail=f"Invalid Content-type ({mime_type}), expected {self._operation.consumes}"
            )

    def _body_validator(self, mime_type: str, encoding: str) -> Any:
        """The body validator for this media type (None when the spec gives no schema, or no
        validator handles the type), built on first use.

        The media type and charset come from the client's Content-Type: only the first
        MAX_CACHED_BODY_VALIDATORS pairs are kept (those real clients send), and any other is
        built for its request alone, so varied headers cannot grow the cache without end.
        """
        key = (mime_type, encoding)
        if key in self._body_validators:
            return self._body_validators[key]
        operation: AbstractOperation = self._operation
        schema = operation.body_schema(mime_type)
        validator_class = self._validator_map["body"].get(mime_type) if schema else None
        validator = validator_class and validator_class(
            schema=schema,
            required=operation.request_body.get("required", False),
            nullable=is_nullable(operation.body_definition(mime_type)),
            encoding=encoding,
            strict_validation=self.strict_validation,
            uri_parser=self._uri_parser,
        )
        if len(self._body_validators) < MAX_CACHED_BODY_VALIDATORS:
            self._body_validators[key] = validator
        return validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameter_validator.validate(scope)
        mime_type, encoding = self.extract_content_type(scope["headers"])
        self.validate_mime_type(mime_type)
        validator = self._body_validator(mime_type, encoding)
        if validator is not None:
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class _PlannedValidationAPI(RequestValidationAPI):  # type: ignore[misc]
    def make_operation(self, operation: AbstractOperation) -> _PlannedValidationOperation:
        return _PlannedValidationOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class PlannedRequestValidationMiddleware(RequestValidationMiddleware):  # type: ignore[misc]
    """Connexion's request validation, with each operation's validators built at start-up."""

    api_cls = _PlannedValidationAPI


class _ValidatedRequest(ConnexionRequest):  # type: ignore[misc]
    """A request whose parameters and JSON body, when request validation already parsed them,
    are not parsed again: the handler gets exactly the values that were validated."""

    def _validated(self, key: str) -> Any:
        return (self.scope.get("extensions") or {}).get(key, _NOT_PARSED)

    @property
    def path_params(self) -> dict[str, Any]:
        return self._parameters("path_params")

    @property
    def query_params(self) -> dict[str, Any]:
        return self._parameters("query_params")

    def _parameters(self, name: str) -> dict[str, Any]:
        checked = self._validated(CHECKED_PARAMETERS)
        params: dict[str, Any] = getattr(super() if checked is _NOT_PARSED else checked, name)
        return params

    async def json(self) -> Any:
        body = self._validated(PARSED_BODY)
        return await super().json() if body is _NOT_PARSED else body

    async def get_body(self) -> Any:
        # Connexion's own recognises JSON by a case-sensitive comparison of the header.
        body = self._validated(PARSED_BODY)
        return await super().get_body() if body is _NOT_PARSED else body


_NOT_PARSED = object()


class _PlannedOperation:
    """Calls one operation's handler with the arguments Connexion's parameter decorator would
    give it (its own `prep_kwargs`), but with the handler's signature read once, and without
    parsing a form on requests that carry none."""

    def __init__(
        self,
        operation: AbstractOperation,
        *,
        pythonic_params: bool,
        jsonifier: Any,
        handler_threads: HandlerThreads,
    ) -> None:
        self.operation_id = operation.operation_id
        handler = operation.function
        self._arguments, self._has_kwargs = inspect_function_arguments(unwrap_decorators(handler))
        self._sanitize = pythonic if pythonic_params else sanitized
        self._body_name = self._sanitize(operation.body_name(None))
        self._wants_body = self._has_kwargs or self._body_name in self._arguments
        self._uri_parser = operation.uri_parser_class(
            operation.parameters, operation.body_definition()
        )
        call = (
            handler
            if inspect.iscoroutinefunction(handler)
            else _in_thread(handler, handler_threads)
        )
        self._call = AsyncResponseDecorator(framework=StarletteFramework, jsonifier=jsonifier)(call)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = _ValidatedRequest(scope, receive, uri_parser=self._uri_parser)
        is_form = request.mimetype in FORM_CONTENT_TYPES
        kwargs = prep_kwargs(
            request,
            request_body=await request.get_body() if self._wants_body else None,
            files=await request.files() if is_form else {},
            arguments=self._arguments,
            has_kwargs=self._has_kwargs,
            sanitize=self._sanitize,
        )
        response = await self._call(**kwargs)
        await response(scope, receive, send)


class HandlerThreads:
    """The worker's threads for synchronous handlers, and how long a request may wait for one
    (`queue_timeout` seconds) before it is answered 503: under a stalled database every
    thread may be held until the database deadline, and the requests behind them must not
    wait without end."""

    def __init__(self, count: int, *, queue_timeout: float) -> None:
        self._executor = ThreadPoolExecutor(count, thread_name_prefix="handler")
        self.queue_timeout = queue_timeout

    async def run(self, work: Callable[[], Any]) -> Any:
        """`work`'s result, computed on one of the threads; ServiceUnavailableError when none
        took it up within `queue_timeout` (it then never runs). The wait for a thread, which
        is the wait for a database connection (one thread per connection), is noted on the
        request's outcome."""
        outcome = current_outcome()
        queued = time.perf_counter()

        def timed() -> Any:
            if outcome is not None:
                outcome.handler_wait = time.perf_counter() - queued
            return work()

        started = self._executor.submit(timed)
        gave_up = False

        def give_up() -> None:
            nonlocal gave_up
            gave_up = started.cancel()  # False once a thread runs it: then it is awaited
            if gave_up and outcome is not None:
                outcome.handler_wait = time.perf_counter() - queued

        timer = asyncio.get_running_loop().call_later(self.queue_timeout, give_up)
        try:
            return await asyncio.wrap_future(started)
        except asyncio.CancelledError:
            if gave_up:
                raise ServiceUnavailableError(
                    "Every handler of this worker is busy; try again shortly.",
                    retry_after=BUSY_RETRY_AFTER_SECONDS,
                ) from None
            raise
        finally:
            timer.cancel()


BUSY_RETRY_AFTER_SECONDS = 1


def _in_thread(handler: Callable[..., Any], threads: HandlerThreads) -> Callable[..., Any]:
    """A synchronous handler as a coroutine function that runs it on one of `threads` (database
    calls block; the event loop must not), in the request's context (Connexion's context
    variables).

    asyncio's executor rather than Starlette's `run_in_threadpool`: anyio's hop, with its
    capacity limiter and cancel scope, costs more than twice as much per call under load
    (README, "What makes taskapi fast").
    """

    async def call(**kwargs: Any) -> Any:
        context = contextvars.copy_context()
        return await threads.run(functools.partial(context.run, handler, **kwargs))

    return call


class _PlannedApi(AsyncApi):  # type: ignore[misc]
    def __init__(self, *args: Any, handler_threads: HandlerThreads, **kwargs: Any) -> None:
        # Set first: AsyncApi.__init__ makes the operations.
        self._handler_threads = handler_threads
        super().__init__(*args, **kwargs)

    def make_operation(self, operation: AbstractOperation) -> _PlannedOperation:
        return _PlannedOperation(
            operation,
            pythonic_params=self.pythonic_params,
            jsonifier=self.jsonifier,
            handler_threads=self._handler_threads,
        )


class _PlannedASGIApp(AsyncASGIApp):  # type: ignore[misc]
    api_cls = _PlannedApi

    def __init__(self, *, handler_threads: HandlerThreads) -> None:
        super().__init__()
        self._handler_threads = handler_threads

    def add_api(self, *args: Any, **kwargs: Any) -> _PlannedApi:
        api: _PlannedApi = super().add_api(*args, handler_threads=self._handler_threads, **kwargs)
        return api


class PlannedAsyncApp(AsyncApp):  # type: ignore[misc]
    """Connexion's AsyncApp, calling handlers through decorator chains built at start-up.

    Synchronous handlers run on `handler_threads` threads of the app's own. Size them to the
    database pool: a handler holds a connection for its whole call, so more threads than
    connections only add threads that wait for one, while they contend for the GIL with those
    at work: Starlette's 40 threads on a pool of 10 nearly doubled p99, and 4 threads shortened
    the tail of 10 again (the figures: README, "What makes taskapi fast", and
    docs/deployment.md, "Sizing").
    """

    def __init__(
        self,
        import_name: str,
        *,
        handler_threads: int,
        handler_queue_timeout: float,
        **options: Any,
    ) -> None:
        # AsyncApp.__init__ only creates its inner app, then defers to AbstractApp.
        self._middleware_app = _PlannedASGIApp(
            handler_threads=HandlerThreads(handler_threads, queue_timeout=handler_queue_timeout)
        )
        AbstractApp.__init__(self, import_name, **options)


class _PlannedBearerHandler(BearerSecurityHandler):  # type: ignore[misc]
    """Connexion's bearer check, reading the token function's signature once instead of twice
    per request."""

    _accepts_kwarg = staticmethod(functools.cache(BearerSecurityHandler._accepts_kwarg))


PLANNED_SECURITY_MAP = {"bearer": _PlannedBearerHandler}


class SwaggerUIOnItsPaths(SwaggerUIMiddleware):  # type: ignore[misc]
    """The Swagger UI and the served spec, with every other request passed straight on instead
    of through the UI's router."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self._prefixes: tuple[str, ...] = ()

    def add_api(self, *args: Any, **options: Any) -> None:
        super().add_api(*args, **options)
        # What the UI serves, read off its own router: one mount per API, one route per page.
        self._prefixes = tuple(
            mount.path + route.path for mount in self.router.routes for route in mount.routes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self._prefixes):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
