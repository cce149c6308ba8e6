"""Routing from operationId to handler, and what each handler declares it needs.

An operation's first tag names its handler module and its operationId the function: `create_user`
tagged `users` is `taskapi.handlers.users.create_user`. The spec so names no Python path, and
generated clients get plain method names (`create_user`, `createUser`). Handlers ask for
collaborators by naming keyword parameters, which this module supplies:

- `session`: a session whose transaction commits when the handler returns and rolls back when
  it raises (the request owns the transaction; services never commit); for GET, HEAD and
  OPTIONS, a session that only reads (`Database.reading`);
- `caller`: who the verified bearer token speaks for (`auth.Caller`: the account's id and
  role), read in that session (and the account locked until it ends, when the unit of work
  writes);
- `current_user`: that account itself, for handlers that change or show it;
- `access_claims`: that token's claims (its session id, for logout);
- `auth`: the authentication policy (token issuer, throttle, limits, password hashing);
- `client`: the client's address, for per-client limits;
- `cursor_secret`: the key that signs page cursors;
- `request_path`: the path the request was sent to (for `Location` and page links);
- `if_match`, `if_none_match`, `authorization`: those request headers, or None;
- `metrics`, `drain`: the app's metrics and its shutdown drain.

`PROVIDERS` below is that list, the one place each comes from: no handler or service reads
`connexion.request`, the scope or a module global (tests/test_handler_inputs.py checks it).
An operation whose spec declares the `Idempotency-Key` header also gets its replies replayed
(`taskapi.web.idempotency`), keyed by its operationId, without its handler knowing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connexion.context import context, operation, scope
from connexion.exceptions import ResolverError
from connexion.operations import AbstractOperation
from connexion.resolver import Resolution, Resolver
from connexion.utils import get_function_from_name
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.types import Scope

from taskapi.db import Database
from taskapi.errors import DomainError
from taskapi.models import User
from taskapi.services import auth
from taskapi.services.tokens import AccessClaims
from taskapi.serving import DRAIN_STATE_KEY
from taskapi.web.idempotency import IDEMPOTENCY_KEY_HEADER, replayed
from taskapi.web.metrics import METRICS_STATE_KEY

HANDLERS_PACKAGE = "taskapi.handlers"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class _Call:
    """One call of a handler: its request, and the unit of work it runs in (None for an
    asynchronous handler, which never touches the database)."""

    scope: Scope
    session: Session | None
    policy: auth.AuthPolicy
    cursor_secret: bytes
    writes: bool
    headers: Headers = field(init=False)
    _caller: auth.Caller | None = field(default=None, init=False)
    _user: User | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.headers = Headers(scope=self.scope)

    def unit_of_work(self) -> Session:
        assert self.session is not None, "asynchronous handlers get no session"
        return self.session

    def caller(self) -> auth.Caller:
        """Who the verified bearer token speaks for, authenticated (once) in the session."""
        if self._caller is None:
            self._caller = auth.authenticate(
                session=self.unit_of_work(), claims=_claims(), for_writing=self.writes
            )
        return self._caller

    def current_user(self) -> User:
        """The caller's account, loaded (once) in the session, locked when the unit of work
        writes (`auth.account`)."""
        if self._user is None:
            self._user = auth.account(
                session=self.unit_of_work(), claims=_claims(), for_writing=self.writes
            )
        return self._user


def _claims() -> AccessClaims:
    # Connexion's security layer verified the token and left its claims here.
    claims: AccessClaims = context["token_info"]["claims"]
    return claims


def _client(call: _Call) -> str:
    client = call.scope.get("client")
    return client[0] if client else "unknown"


# Every name a handler may ask for, and where its value comes from: the one table.
PROVIDERS: Mapping[str, Callable[[_Call], Any]] = {
    "session": _Call.unit_of_work,
    "caller": _Call.caller,
    "current_user": _Call.current_user,
    "access_claims": lambda _call: _claims(),
    "auth": lambda call: call.policy,
    "cursor_secret": lambda call: call.cursor_secret,
    "client": _client,
    "request_path": lambda call: call.scope["path"],
    "if_match": lambda call: call.headers.get("if-match"),
    "if_none_match": lambda call: call.headers.get("if-none-match"),
    "authorization": lambda call: call.headers.get("authorization"),
    "metrics": lambda call: call.scope["state"][METRICS_STATE_KEY],
    "drain": lambda call: call.scope["state"][DRAIN_STATE_KEY],
}
INJECTED = frozenset(PROVIDERS)
# What needs the unit of work; an asynchronous handler may ask for anything else.
_NEEDS_SESSION = frozenset({"session", "caller", "current_user"})


def with_dependencies(
    handler: Callable[..., Any],
    *,
    database: Database,
    policy: auth.AuthPolicy,
    cursor_secret: bytes,
) -> Callable[..., Any]:
    """`handler` given what it names from PROVIDERS, inside one unit of work, with Idempotency-Key
    replay when its operation declares the header."""
    wanted = INJECTED & set(inspect.signature(handler).parameters)
    if inspect.iscoroutinefunction(handler):
        if wanted & _NEEDS_SESSION:
            raise TypeError(f"{handler.__qualname__} is asynchronous: it cannot use the database")

        @functools.wraps(handler)
        async def call_asynchronously(*args: Any, **kwargs: Any) -> Any:
            call = _Call(scope, None, policy, cursor_secret, writes=False)
            return await handler(
                *args, **kwargs, **{name: PROVIDERS[name](call) for name in wanted}
            )

        return call_asynchronously if wanted else handler

    @functools.wraps(handler)
    def call_with_dependencies(*args: Any, **kwargs: Any) -> Any:
        reads_only = scope.get("method") in SAFE_METHODS
        unit = database.reading() if reads_only else database.transaction(writes=True)
        with unit as session:
            call = _Call(scope, session, policy, cursor_secret, writes=not reads_only)
            try:
                kwargs.update({name: PROVIDERS[name](call) for name in wanted})
                key = call.headers.get(IDEMPOTENCY_KEY_HEADER) if _is_idempotent() else None
                if key is None:
                    return handler(*args, **kwargs)
                return replayed(
                    session=session,
                    owner_id=call.caller().id,
                    operation=operation.operation_id,
                    key=key,
                    request_body=kwargs.get("body"),
                    respond=functools.partial(handler, *args, **kwargs),
                )
            except DomainError as error:
                if error.persist_changes:
                    session.commit()
                raise

    return call_with_dependencies


_IDEMPOTENT: dict[str, bool] = {}


def _is_idempotent() -> bool:
    """Whether the operation being served declares the Idempotency-Key header (read from the
    spec once per operation)."""
    operation_id: str = operation.operation_id
    if operation_id not in _IDEMPOTENT:
        _IDEMPOTENT[operation_id] = any(
            parameter.get("in") == "header" and parameter.get("name") == IDEMPOTENCY_KEY_HEADER
            for parameter in operation.parameters
        )
    return _IDEMPOTENT[operation_id]


class HandlerResolver(Resolver):  # type: ignore[misc]
    """Finds each operation's handler by its tag and operationId. The operation keeps the
    spec's operationId as its name (routing, metrics and logs say `create_user`). An operation
    without a tag, or whose function does not exist, stops the app from starting."""

    def __init__(
        self, spec: Mapping[str, Any], function_resolver: Callable[[str], Callable[..., Any]]
    ) -> None:
        super().__init__(function_resolver=function_resolver)
        self._modules = {
            operation["operationId"]: (operation.get("tags") or [None])[0]
            for item in spec.get("paths", {}).values()
            for operation in item.values()
            if isinstance(operation, Mapping) and "operationId" in operation
        }

    def handler_name(self, operation_id: str) -> str:
        """The dotted name of the function that handles `operation_id`."""
        module = self._modules.get(operation_id)
        if module is None:
            raise ResolverError(f"operation {operation_id!r} has no tag to name its handler module")
        return f"{HANDLERS_PACKAGE}.{module}.{operation_id}"

    def resolve(self, operation: AbstractOperation) -> Resolution:
        operation_id = operation.operation_id
        handler = self.resolve_function_from_operation_id(self.handler_name(operation_id))
        return Resolution(handler, operation_id)


def handler_resolver(
    spec: Mapping[str, Any],
    *,
    database: Database,
    policy: auth.AuthPolicy,
    cursor_secret: bytes,
) -> HandlerResolver:
    def resolve(function_name: str) -> Callable[..., Any]:
        handler = get_function_from_name(function_name)
        return with_dependencies(
            handler, database=database, policy=policy, cursor_secret=cursor_secret
        )

    return HandlerResolver(spec, function_resolver=resolve)
