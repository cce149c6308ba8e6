"""Routing from operationId to handler, and what each handler declares it needs.

An operation's first tag names its handler module and its operationId the function: `create_user`
tagged `users` is `taskapi.handlers.users.create_user`. The spec so names no Python path, and
generated clients get plain method names (`create_user`, `createUser`). Handlers ask for
collaborators by naming keyword parameters, which this module supplies:

- `session`: a session whose transaction commits when the handler returns and rolls back when
  it raises (the request owns the transaction; services never commit); for GET, HEAD and
  OPTIONS, a session that only reads (`Database.reading`);
- `current_user`: the account the verified bearer token speaks for, loaded in that session
  (and locked until it ends, when the unit of work writes);
- `access_claims`: that token's claims (its session id, for logout);
- `auth`: the authentication policy (token issuer, throttle, limits);
- `client`: the client's address, for per-client limits;
- `cursor_secret`: the key that signs page cursors.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from connexion.context import context, scope
from connexion.exceptions import ResolverError
from connexion.operations import AbstractOperation
from connexion.resolver import Resolution, Resolver
from connexion.utils import get_function_from_name
from sqlalchemy.orm import Session

from taskapi.db import Database
from taskapi.errors import DomainError
from taskapi.services import auth
from taskapi.services.tokens import AccessClaims

HANDLERS_PACKAGE = "taskapi.handlers"
INJECTED = frozenset(
    {"session", "current_user", "access_claims", "auth", "client", "cursor_secret"}
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def with_dependencies(
    handler: Callable[..., Any],
    *,
    database: Database,
    policy: auth.AuthPolicy,
    cursor_secret: bytes,
) -> Callable[..., Any]:
    wanted = INJECTED & set(inspect.signature(handler).parameters)
    if not wanted:
        return handler

    @functools.wraps(handler)
    def call_with_dependencies(*args: Any, **kwargs: Any) -> Any:
        reads_only = scope.get("method") in SAFE_METHODS
        unit = database.reading() if reads_only else database.transaction(writes=True)
        with unit as session:
            try:
                kwargs.update(
                    _provide(wanted, session=session, policy=policy, writes=not reads_only)
                )
                if "cursor_secret" in wanted:
                    kwargs["cursor_secret"] = cursor_secret
                return handler(*args, **kwargs)
            except DomainError as error:
                if error.persist_changes:
                    session.commit()
                raise

    return call_with_dependencies


def _provide(
    wanted: frozenset[str], *, session: Session, policy: auth.AuthPolicy, writes: bool
) -> dict[str, Any]:
    provided: dict[str, Any] = {}
    if "session" in wanted:
        provided["session"] = session
    if "auth" in wanted:
        provided["auth"] = policy
    if "client" in wanted:
        client = scope.get("client")
        provided["client"] = client[0] if client else "unknown"
    if "current_user" in wanted:
        # Connexion's security layer verified the token and left its claims here.
        claims: AccessClaims = context["token_info"]["claims"]
        provided["current_user"] = auth.authenticate(
            session=session, claims=claims, for_writing=writes
        )
        if "access_claims" in wanted:
            provided["access_claims"] = claims
    return provided


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
