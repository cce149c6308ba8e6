"""Routing from operationId to handler, with one unit of work around each handler call.

`users.create_user` in the spec resolves to `taskapi.handlers.users.create_user`. A handler that
declares a `session` parameter receives a session whose transaction commits when the handler
returns and rolls back when it raises: the request owns the transaction, services never commit.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from connexion.resolver import RelativeResolver
from connexion.utils import get_function_from_name

from taskapi.db import Database

HANDLERS_PACKAGE = "taskapi.handlers"


def in_transaction(handler: Callable[..., Any], database: Database) -> Callable[..., Any]:
    if "session" not in inspect.signature(handler).parameters:
        return handler

    @functools.wraps(handler)
    def run_in_transaction(*args: Any, **kwargs: Any) -> Any:
        with database.transaction() as session:
            return handler(*args, session=session, **kwargs)

    return run_in_transaction


def handler_resolver(database: Database) -> RelativeResolver:
    def resolve(function_name: str) -> Callable[..., Any]:
        return in_transaction(get_function_from_name(function_name), database)

    return RelativeResolver(HANDLERS_PACKAGE, function_resolver=resolve)
