"""taskapi.web.planned: synchronous handlers run on the app's own, bounded set of threads, and
what the client's headers choose cannot grow the validators kept per operation."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from connexion import AsyncApp
from connexion.middleware.abstract import ROUTING_CONTEXT
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.security import SecurityMiddleware, SecurityOperation
from starlette.testclient import TestClient

from taskapi.errors import ServiceUnavailableError
from taskapi.services.tokens import TokenIssuer
from taskapi.settings import Settings
from taskapi.spec import load_spec
from taskapi.web.planned import (
    MAX_CACHED_BODY_VALIDATORS,
    HandlerThreads,
    PlannedAsyncApp,
    PlannedRequestValidationMiddleware,
    PlannedRouting,
    PlannedSecurityMiddleware,
)
from taskapi.web.validation import VALIDATOR_MAP

HANDLER_THREADS = 2
CONCURRENT_REQUESTS = 6
threads_seen: set[str] = set()

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "threads", "version": "1"},
    "paths": {
        "/thread": {
            "get": {
                "operationId": f"{__name__}.record_thread",
                "responses": {"200": {"description": "the handler's thread"}},
            }
        }
    },
}


def record_thread() -> dict[str, str]:
    """A handler that blocks, as one waiting on the database does."""
    threads_seen.add(threading.current_thread().name)
    time.sleep(0.05)
    return {"thread": threading.current_thread().name}


def test_synchronous_handlers_run_on_no_more_threads_than_the_app_was_given() -> None:
    app = PlannedAsyncApp(__name__, handler_threads=HANDLER_THREADS, handler_queue_timeout=5)
    app.add_api(SPEC)
    threads_seen.clear()

    answers = asyncio.run(_all_at_once(app, CONCURRENT_REQUESTS))

    assert [answer.status_code for answer in answers] == [200] * CONCURRENT_REQUESTS
    # All were in flight at once: an unbounded pool would have run them on as many threads.
    assert len(threads_seen) == HANDLER_THREADS
    assert all(name.startswith("handler") for name in threads_seen)


async def _all_at_once(app: PlannedAsyncApp, count: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return list(await asyncio.gather(*(client.get("/thread") for _ in range(count))))


def test_varied_charsets_cannot_grow_the_body_validators_kept(
    client: TestClient, session_app: AsyncApp
) -> None:
    for n in range(3 * MAX_CACHED_BODY_VALIDATORS):
        # Connexion reads the charset only when no space precedes it.
        headers = {"Content-Type": f"application/json;charset=made-up-{n}"}
        assert client.post("/v1/users", content=b"{}", headers=headers).status_code == 400

    kept = [len(operation._body_validators) for operation in _validation_operations(session_app)]
    assert 0 < max(kept) <= MAX_CACHED_BODY_VALIDATORS


def _validation_operations(app: AsyncApp) -> list[Any]:
    layer: Any = app.middleware.app
    while not isinstance(layer, PlannedRequestValidationMiddleware):
        layer = layer.app
    return [
        operation
        for apis in layer.apis.values()
        for api in apis
        for operation in api.operations.values()
    ]


def test_a_request_waits_for_a_handler_thread_no_longer_than_the_queue_timeout() -> None:
    threads = HandlerThreads(1, queue_timeout=0.2)
    release, ran = threading.Event(), []

    async def scenario() -> tuple[BaseException | None, float]:
        holder = asyncio.ensure_future(threads.run(lambda: release.wait(10)))
        await asyncio.sleep(0.05)  # the one thread is taken
        started = time.monotonic()
        try:
            await threads.run(lambda: ran.append("queued"))
        except ServiceUnavailableError as refused:
            error: BaseException | None = refused
        else:
            error = None
        waited = time.monotonic() - started
        release.set()
        await holder
        return error, waited

    error, waited = asyncio.run(scenario())

    assert isinstance(error, ServiceUnavailableError)
    assert error.retry_after >= 1
    assert 0.15 < waited < 1.0
    assert ran == []  # refused work never runs later


def test_a_handler_thread_hands_its_result_or_its_exception_to_the_request() -> None:
    threads = HandlerThreads(2, queue_timeout=5)
    failure = LookupError("from the handler")

    def fail() -> None:
        raise failure

    async def scenario() -> tuple[Any, BaseException | None]:
        result = await threads.run(lambda: ("answer", threading.current_thread().name))
        try:
            await threads.run(fail)
        except LookupError as raised:
            return result, raised
        return result, None

    result, raised = asyncio.run(scenario())

    assert result[0] == "answer"
    assert result[1].startswith("handler")
    assert raised is failure
    assert raised.__traceback__ is not None


def test_a_request_cancelled_before_or_while_its_handler_runs_leaves_the_loop_quiet() -> None:
    threads = HandlerThreads(1, queue_timeout=5)
    release, ran, loop_errors = threading.Event(), [], []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: loop_errors.append(ctx))
        running = asyncio.ensure_future(threads.run(lambda: (release.wait(10), ran.append("ran"))))
        queued = asyncio.ensure_future(threads.run(lambda: ran.append("queued")))
        await asyncio.sleep(0.05)  # the one thread runs the first; the second waits for it
        running.cancel()
        queued.cancel()
        await asyncio.gather(running, queued, return_exceptions=True)  # both requests gone
        release.set()
        await asyncio.sleep(0.2)  # the first ends on its thread and hands over to nobody
        assert running.cancelled()
        assert queued.cancelled()

    asyncio.run(scenario())

    assert ran == ["ran"]  # cancelled before a thread took it up: never run
    assert loop_errors == []


ARGUMENTS_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "arguments", "version": "1"},
    "paths": {
        "/items/{item_id}": {
            "post": {
                "operationId": f"{__name__}.record_arguments",
                "parameters": [
                    {
                        "name": "item_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}},
                    {
                        "name": "tag",
                        "in": "query",
                        "style": "form",
                        "explode": True,
                        "schema": {"type": "array", "items": {"type": "string"}},
                    },
                    {"name": "ignored", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {"200": {"description": "the arguments the handler got"}},
            }
        }
    },
}
arguments_seen: list[dict[str, Any]] = []


def record_arguments(
    item_id: int, limit: int, tag: list[str] | None = None, body: Any = None
) -> dict[str, str]:
    arguments_seen.append({"item_id": item_id, "limit": limit, "tag": tag, "body": body})
    return {}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/items/7", {"title": "sent"}),
        ("/items/7?limit=5&tag=a&tag=b&ignored=x", {"title": "sent"}),
        ("/items/8?tag=only", {}),
    ],
)
def test_handlers_get_the_arguments_connexion_itself_would_give(path: str, body: Any) -> None:
    stock = AsyncApp(__name__)
    planned = PlannedAsyncApp(__name__, handler_threads=1, handler_queue_timeout=5)
    ours = PlannedAsyncApp(
        __name__,
        handler_threads=1,
        handler_queue_timeout=5,
        middlewares=[
            PlannedRequestValidationMiddleware if layer is RequestValidationMiddleware else layer
            for layer in ConnexionMiddleware.default_middlewares
        ],
    )
    seen = []
    # Stock Connexion; ours with stock validation (the arguments built from a request object);
    # ours with our validation (built from what validation parsed).
    for app in (stock, planned, ours):
        app.add_api(ARGUMENTS_SPEC, validator_map=VALIDATOR_MAP)
        arguments_seen.clear()
        with TestClient(app) as client:
            assert client.post(path, json=body).status_code == 200
        seen.append(arguments_seen[0])

    assert seen[0] == seen[1] == seen[2]


def _routing_of(client: TestClient) -> PlannedRouting:
    client.get("/v1/healthz")  # the middleware stack is built on the first request
    middleware: Any = client.app
    stack = middleware.middleware.middleware_stack
    return next(layer for layer in stack if isinstance(layer, PlannedRouting))


def _requests_to_route() -> list[tuple[str, str]]:
    """Every operation's method and path (its parameters filled in), with HEAD for each GET,
    and what the router answers itself: methods a path does not take, a slash to redirect,
    paths no route takes."""
    filled = {"task_id": str(uuid.UUID(int=7)), "user_id": str(uuid.UUID(int=8))}
    found = []
    for path, item in load_spec()["paths"].items():
        concrete = "/v1" + path.format(**filled)
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method.upper(), concrete))
                found.append(("HEAD", concrete) if method == "get" else ("PUT", concrete))
        found.append(("GET", concrete + "/"))
    odd = ["/v1", "/v1/", "/v2/tasks", "/tasks", "/v1/tasks/a/b", "/v1/tasks/ünï cødé", "/"]
    return found + [("GET", path) for path in odd] + [("OPTIONS", "/v1/tasks")]


def test_operations_are_routed_with_the_scope_connexion_s_router_gives(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    routing = _routing_of(client)
    seen: list[Any] = []

    async def next_layer(_layer: Any, scope: Any, _receive: Any, _send: Any) -> None:
        seen.append((scope["path_params"], scope["extensions"][ROUTING_CONTEXT]))

    monkeypatch.setattr(SecurityMiddleware, "__call__", next_layer)

    def routed(route: Any, method: str, path: str, *, root_path: str = "") -> Any:
        seen.clear()
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http", "method": method, "path": path, "root_path": root_path,
            "raw_path": path.encode(), "query_string": b"", "headers": [],
            "extensions": {}, "scheme": "http", "server": ("127.0.0.1", 80),
        }  # fmt: skip
        asyncio.run(route(scope, receive, send))
        answered = [(m["status"], sorted(m["headers"])) for m in sent if "status" in m]
        return seen[:], answered

    stock = functools.partial(RoutingMiddleware.__call__, routing)
    requests = _requests_to_route()
    for method, path in requests:
        assert routed(routing, method, path) == routed(stock, method, path), (method, path)
    # Behind a proxy's root path, the stock router (which strips it) routes.
    assert routed(routing, "GET", "/api/v1/tasks", root_path="/api") == routed(
        stock, "GET", "/api/v1/tasks", root_path="/api"
    )
    # The operations themselves were routed (not all answered by the router).
    assert sum(bool(routed(routing, m, p)[0]) for m, p in requests) >= len(requests) // 3


def _security_of(client: TestClient) -> PlannedSecurityMiddleware:
    client.get("/v1/healthz")  # the middleware stack is built on the first request
    middleware: Any = client.app
    stack = middleware.middleware.middleware_stack
    return next(layer for layer in stack if isinstance(layer, PlannedSecurityMiddleware))


def _authorizations(settings: Settings) -> list[list[tuple[bytes, bytes]]]:
    """Authorization headers as clients send them, good and bad: each list is one request's."""
    issuer = TokenIssuer(
        secret=settings.signing_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=timedelta(minutes=5),
        refresh_ttl=timedelta(days=1),
    )

    def token(now: datetime) -> bytes:
        made = issuer.issue_access_token(
            user_id=str(uuid.UUID(int=9)), token_version=0, session_id=uuid.UUID(int=10), now=now
        )
        return made.encode()

    valid, expired = token(datetime.now(UTC)), token(datetime.now(UTC) - timedelta(hours=1))
    forged = valid[:-2] + (b"AA" if not valid.endswith(b"AA") else b"BB")
    values = [
        b"", b"Bearer", b"Bearer ", b"Basic dXNlcjpwYXNz", b"Bearer " + valid,
        b"bearer " + valid, b"BEARER " + valid, b"Bearer  " + valid, b"Bearer " + valid + b" x",
        b"Bearer " + expired, b"Bearer " + forged, b"Bearer \xff\xfe", b"Token " + valid,
    ]  # fmt: skip
    name = b"authorization"
    return [
        [],
        *([(name, value)] for value in values),
        [(name, b"Basic dXNlcjpwYXNz"), (name, b"Bearer " + valid)],  # the first one counts
        # ASGI servers give names in lower case; a name that is not is not the header.
        [(b"Authorization", b"Bearer " + valid), (name, b"Basic x")],
    ]


def test_the_planned_bearer_check_answers_as_connexion_s_own(
    client: TestClient, settings: Settings
) -> None:
    security = _security_of(client)
    (api,) = [api for apis in security.apis.values() for api in apis]
    secured = {
        operation_id: operation
        for operation_id, operation in api.operations.items()
        if operation.security
    }
    # Every secured operation of the spec takes the planned check, none the stock one.
    assert secured
    assert all(operation._token_info is not None for operation in secured.values())

    def outcome(check: Any, headers: list[tuple[bytes, bytes]]) -> Any:
        scope: dict[str, Any] = {"type": "http", "headers": headers, "extensions": {}}
        passed: list[Any] = []

        async def next_app(scope: Any, _receive: Any, _send: Any) -> None:
            passed.append(scope["extensions"]["connexion_context"])

        check.next_app = next_app
        try:
            asyncio.run(check(scope, None, None))
        except Exception as error:  # the outcome compared is the error itself
            return type(error), getattr(error, "status_code", None), str(error)
        return passed

    for operation in secured.values():
        stock = SecurityOperation(
            operation.next_app,
            security_handler_factory=operation.security_handler_factory,
            security=operation.security,
            security_schemes=operation.security_schemes,
        )
        for headers in _authorizations(settings):
            assert outcome(operation, headers) == outcome(stock, headers), headers
