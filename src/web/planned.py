"""Connexion's per-request layers, planned once per operation at start-up.

Stock Connexion 3.3 redoes, on every request, work whose result depends only on the operation:
the request validator builds a URI parser, a parameter validator, a media-type table and a body
validator; the app rebuilds the handler's decorator chain (four `functools.wraps` and an
`inspect.signature`), parses the parameters and the JSON body a second time, and parses a
form on every request, even a GET; the bearer check builds a request object and goes through
three wrappers, reading the token function's signature twice; and the Swagger UI middleware
runs its router over every API request. Each sync
handler then hops to a thread through anyio, whose hop costs more than asyncio's own executor.

The classes below are drop-in subclasses that do that work when the app starts and keep the
per-request path to what depends on the request. Behaviour is Connexion's own: the same
validators (`validation.VALIDATOR_MAP`), the same argument building (`prep_kwargs`), the same
errors. They are installed in one place, `taskapi.app.create_app`; README, "Benchmarks", gives
what each saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import inspect
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connexion.apps.abstract import AbstractApp
from connexion.apps.asynchronous import AsyncApi, AsyncApp, AsyncASGIApp
from connexion.context import context
from connexion.datastructures import MediaTypeDict
from connexion.decorators.parameter import (
    CONTEXT_NAME,
    _get_val_from_param,
    pythonic,
    sanitized,
    unwrap_decorators,
)
from connexion.decorators.response import AsyncResponseDecorator
from connexion.exceptions import (
    OAuthProblem,
    OAuthResponseProblem,
    UnsupportedMediaTypeProblem,
)
from connexion.frameworks.starlette import Starlette as StarletteFramework
from connexion.http_facts import FORM_CONTENT_TYPES
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.middleware.routing import RoutingMiddleware, RoutingOperation
from connexion.middleware.security import SecurityAPI, SecurityMiddleware, SecurityOperation
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.operations import AbstractOperation
from connexion.security import NO_VALUE, BearerSecurityHandler
from connexion.utils import (
    inspect_function_arguments,
    is_null,
    is_nullable,
)
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from taskapi.errors import ServiceUnavailableError
from taskapi.web.media_types import parse_media_type
from taskapi.web.outcome import current_outcome
from taskapi.web.validation import CHECKED_PARAMETERS, PARSED_BODY, CheckedParameters

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
        # The first Content-Type, as Connexion's `extract_content_type` finds it, without the
        # typing objects it builds per call.
        header = next(
            (value.decode("latin-1") for name, value in headers if name.lower() == b"content-type"),
            None,
        )
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


class _PlannedArguments:
    """Builds one operation's handler arguments as Connexion's `prep_kwargs` would, from the
    parameters and body request validation already parsed, with what depends only on the
    operation (which parameters the handler takes, their definitions and defaults, the body's
    name) read from the spec once."""

    def __init__(
        self, operation: AbstractOperation, handler: Callable[..., Any], *, pythonic_params: bool
    ) -> None:
        if any(media_type in FORM_CONTENT_TYPES for media_type in operation.consumes):
            raise NotImplementedError(
                f"{operation.operation_id}: form bodies are not planned (the spec has none)"
            )
        arguments, self._has_kwargs = inspect_function_arguments(unwrap_decorators(handler))
        sanitize = pythonic if pythonic_params else sanitized
        wanted = set(arguments)

        def taken(parameter_in: str) -> list[tuple[str, str, dict[str, Any]]]:
            return [
                (p["name"], sanitize(p["name"]), p)
                for p in operation.parameters
                if p["in"] == parameter_in and (self._has_kwargs or sanitize(p["name"]) in wanted)
            ]

        self._path = taken("path")
        self._query = taken("query")
        # Connexion types each default as it types a value sent.
        self._query_defaults = {
            key: _get_val_from_param(default, definition)
            for _, key, definition in self._query
            if (default := _query_default(definition)) is not _NO_DEFAULT
        }
        body_name = sanitize(operation.body_name(None))
        self._body_name = (
            body_name
            if operation.is_request_body_defined and (self._has_kwargs or body_name in wanted)
            else None
        )
        self._body_schema = operation.body_schema() if self._body_name else {}
        spec_names = {key for _, key, _ in (*self._path, *self._query)} | {body_name}
        # Whatever else the handler names may come from the security layer's context.
        self._context_names = wanted - spec_names
        self._uri_parser = operation.uri_parser_class(
            operation.parameters, operation.body_definition()
        )

    async def __call__(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        extensions = scope.get("extensions") or {}
        checked: CheckedParameters | None = extensions.get(CHECKED_PARAMETERS)
        body = extensions.get(PARSED_BODY, _NOT_PARSED)
        if checked is None or (self._body_name and body is _NOT_PARSED):
            # Validation did not parse this request (an app without our validators).
            request = ConnexionRequest(scope, receive, uri_parser=self._uri_parser)
            checked = CheckedParameters(request.path_params, request.query_params)
            body = await request.get_body() if self._body_name else None
        kwargs = {
            key: _get_val_from_param(checked.path_params[name], definition)
            for name, key, definition in self._path
            if name in checked.path_params
        }
        kwargs.update(self._query_defaults)
        query = checked.query_params
        kwargs.update(
            (key, _get_val_from_param(query[name], definition))
            for name, key, definition in self._query
            if name in query
        )
        if self._body_name:
            kwargs[self._body_name] = self._body(body)
        if self._context_names or self._has_kwargs:
            kwargs.update(
                (key, value)
                for key, value in context.items()
                if self._has_kwargs or key in self._context_names
            )
            if CONTEXT_NAME in self._context_names:
                kwargs[CONTEXT_NAME] = context
        return kwargs

    def _body(self, body: Any) -> Any:
        # Connexion's rules: a null body where the schema allows null stays None; an absent
        # one is the schema's default.
        if is_null(body) and is_nullable(self._body_schema):
            return None
        if body is None:
            return copy.deepcopy(self._body_schema.get("default", {}))
        return body


_NOT_PARSED = object()
_NO_DEFAULT = object()


def _query_default(definition: Mapping[str, Any]) -> Any:
    """A query parameter's default, as Connexion's `_get_query_defaults` finds it."""
    schema = definition.get("schema", {})
    if schema.get("type") == "object":
        # Connexion deep-merges an object's defaults with what was sent; no parameter needs it.
        raise NotImplementedError(f"object query parameter {definition['name']!r} is not planned")
    return definition.get("default", schema.get("default", _NO_DEFAULT))


class _PlannedOperation:
    """Calls one operation's handler with the arguments Connexion's parameter decorator would
    give it (`_PlannedArguments`), without building a request object."""

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
        self._arguments = _PlannedArguments(operation, handler, pythonic_params=pythonic_params)
        call = (
            handler
            if inspect.iscoroutinefunction(handler)
            else _in_thread(handler, handler_threads)
        )
        self._call = AsyncResponseDecorator(framework=StarletteFramework, jsonifier=jsonifier)(call)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._call(**await self._arguments(scope, receive))
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
        request's outcome.

        The thread hands its answer to the loop with one `call_soon_threadsafe`, not through
        `asyncio.wrap_future`, whose chaining of the executor's future to an asyncio one
        copies its state through callbacks on both sides (README, "What makes taskapi
        fast", has the saving)."""
        outcome = current_outcome()
        queued = time.perf_counter()
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def on_thread() -> None:
            if outcome is not None:
                outcome.handler_wait = time.perf_counter() - queued
            try:
                result = work()
            except BaseException as error:  # handed to the awaiting request, as an executor would
                _hand_over(loop, answer, None, error)
            else:
                _hand_over(loop, answer, result, None)

        started = self._executor.submit(on_thread)

        def give_up() -> None:
            if started.cancel() and not answer.done():  # cancel() is False once a thread runs it
                if outcome is not None:
                    outcome.handler_wait = time.perf_counter() - queued
                answer.set_exception(
                    ServiceUnavailableError(
                        "Every handler of this worker is busy; try again shortly.",
                        retry_after=BUSY_RETRY_AFTER_SECONDS,
                    )
                )

        timer = loop.call_later(self.queue_timeout, give_up)
        try:
            return await answer
        except asyncio.CancelledError:
            started.cancel()  # the request is gone: work not yet begun never runs
            raise
        finally:
            timer.cancel()


def _hand_over(
    loop: asyncio.AbstractEventLoop,
    answer: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    """From a handler thread: settle `answer` on its loop (`_settle`), unless the loop is gone
    (a worker shutting down: nobody is waiting)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, answer, result, error)


def _settle(answer: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the loop: `answer` given its result or error, unless the request is gone (its
    future cancelled)."""
    if answer.done():
        return
    if error is None:
        answer.set_result(result)
    else:
        answer.set_exception(error)


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


class PlannedRouting(RoutingMiddleware):  # type: ignore[misc]
    """Connexion's routing, matching the spec's operations from a table made at start-up.

    Stock routing runs Starlette's router per request: the API's mount, then each route in
    turn (a path of its own, a child scope each), and hands the next layer a copy of the
    request's scope with the path's parameters and the operation's id. Here the routes of each
    API are read once off that same router (their compiled patterns and parameter
    convertors, in its order), and a request that one of them matches, method included, goes
    straight to the next layer with the same scope. Anything else (no route, a method the path
    does not take, a slash to redirect, an ASGI root path) takes the stock router, which
    answers it as before. tests/test_planned.py holds the two to the same scopes.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        # (method, path) -> (base path, operation id) for routes without parameters that no
        # earlier route also matches; per method, every route in the router's order.
        self._fixed: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._ordered: dict[str, list[_PlannedRoute]] = {}
        self._planned = True

    def add_api(self, *args: Any, **kwargs: Any) -> None:
        mounts = len(self.router.routes)
        super().add_api(*args, **kwargs)
        added = self.router.routes[mounts:]
        if len(added) != 1 or not isinstance(added[0], Mount) or mounts:
            # A second API (stock routing chains those on one base path): not planned.
            self._planned = False
            return
        mount = added[0]
        for route in mount.routes:
            if not isinstance(route, Route) or not isinstance(route.app, RoutingOperation):
                self._planned = False
                return
            planned = _PlannedRoute(mount.path, route, route.app.operation_id)
            for method in route.methods or ():
                earlier = self._ordered.setdefault(method, [])
                if not route.param_convertors and not any(
                    other.match(mount.path + route.path) is not None for other in earlier
                ):
                    self._fixed.setdefault((method, mount.path + route.path), planned.target)
                earlier.append(planned)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._planned and scope["type"] == "http" and not scope.get("root_path"):
            found = self._route(scope["method"], scope["path"])
            if found is not None:
                (base_path, operation_id), path_params = found
                routed: Scope = dict(scope)
                routed.setdefault("path_params", {}).update(path_params)
                routing = routed.setdefault("extensions", {}).setdefault(ROUTING_CONTEXT, {})
                routing.update({"api_base_path": base_path, "operation_id": operation_id})
                await self.app(routed, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _route(
        self, method: str, path: str
    ) -> tuple[tuple[str, str | None], dict[str, Any]] | None:
        target = self._fixed.get((method, path))
        if target is not None:
            return target, {}
        for route in self._ordered.get(method, ()):
            path_params = route.match(path)
            if path_params is not None:
                return route.target, path_params
        return None


class _PlannedRoute:
    """One operation's route under its API's base path, as Starlette's Mount and Route match
    it."""

    def __init__(self, base_path: str, route: Route, operation_id: str | None) -> None:
        self._prefix = base_path + "/"
        self._base_length = len(base_path)
        self._pattern = route.path_regex
        self._convertors = route.param_convertors
        self.target = (base_path, operation_id)

    def match(self, path: str) -> dict[str, Any] | None:
        """The path's parameters, converted, when the route takes it; else None."""
        if not path.startswith(self._prefix):
            return None
        found = self._pattern.match(path[self._base_length :])
        if found is None:
            return None
        return {
            name: self._convertors[name].convert(value) for name, value in found.groupdict().items()
        }


class _PlannedSecurityOperation(SecurityOperation):  # type: ignore[misc]
    """Connexion's security check, planned for an operation whose one requirement is one HTTP
    bearer scheme and whose token function takes the token alone (taskapi's every secured
    operation): the Authorization header read straight off the scope and the function called
    directly, with the errors and the context Connexion's `BearerSecurityHandler` and
    `verify_security` give, instead of a ConnexionRequest and three wrappers per request.
    Any other requirement takes the stock check."""

    def __init__(self, next_app: ASGIApp, **options: Any) -> None:
        super().__init__(next_app, **options)
        self._token_info = self._planned_token_info()

    def _planned_token_info(self) -> Callable[[str], Any] | None:
        if len(self.security) != 1 or len(self.security[0]) != 1:
            return None
        ((name, _scopes),) = self.security[0].items()
        scheme = self.security_schemes[name]
        handler_class = self.security_handler_factory.security_handlers.get("bearer")
        if (
            scheme.get("type") != "http"
            or str(scheme.get("scheme", "")).lower() != "bearer"
            or not (
                isinstance(handler_class, type) and issubclass(handler_class, BearerSecurityHandler)
            )
        ):
            return None
        handler = handler_class()
        function: Callable[..., Any] | None = handler._resolve_func(scheme)
        takes_more = function is not None and (
            handler._accepts_kwarg(function, handler.required_scopes_kw)
            or handler._accepts_kwarg(function, handler.request_kw)
        )
        if function is None or takes_more or inspect.iscoroutinefunction(function):
            return None
        return function

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._token_info is None:
            await super().__call__(scope, receive, send)
            return
        token_info = self._token_info(_bearer_token(scope["headers"]))
        if token_info is NO_VALUE:
            raise OAuthProblem(detail="No authorization token provided")
        if token_info is None:
            raise OAuthResponseProblem(detail="Provided token is not valid")
        context = scope.setdefault("extensions", {}).setdefault("connexion_context", {})
        context.update(
            {"user": token_info.get("sub", token_info.get("uid")), "token_info": token_info}
        )
        await self.next_app(scope, receive, send)


def _bearer_token(headers: list[tuple[bytes, bytes]]) -> str:
    """The token of the request's first Authorization header, as `BearerSecurityHandler`
    finds it (by the lower-case name ASGI servers give), or the OAuthProblem it raises."""
    authorization = next(
        (value.decode("latin-1") for name, value in headers if name == b"authorization"), None
    )
    if not authorization:
        raise OAuthProblem(detail="No authorization token provided")
    try:
        auth_type, token = authorization.split(maxsplit=1)
    except ValueError:
        raise OAuthProblem(detail="Invalid authorization header") from None
    if auth_type.lower() != "bearer":
        raise OAuthProblem(detail="No authorization token provided")
    return token


class _PlannedSecurityAPI(SecurityAPI):  # type: ignore[misc]
    def make_operation(self, operation: Any) -> _PlannedSecurityOperation:
        planned: _PlannedSecurityOperation = _PlannedSecurityOperation.from_operation(
            operation,
            next_app=self.next_app,
            security_handler_factory=self.security_handler_factory,
        )
        return planned


class PlannedSecurityMiddleware(SecurityMiddleware):  # type: ignore[misc]
    """Connexion's security layer, with each bearer-secured operation's check planned."""

    api_cls = _PlannedSecurityAPI


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
