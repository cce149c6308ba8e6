"""Running the services' hot reads: SELECTs made once, on the models' tables.

`rows` and `first_row` run a statement with its bound parameters in the request's unit of work
and answer its rows, which name their columns as Core's rows do (`row.title`, `row[0]`).

Through Core, a SQLite read costs several times what the driver spends on it: each statement
gets an execution context, a result object and its events, where the driver's own call is a
few microseconds (README, "What makes taskapi fast", has the figures). So on SQLite, a
statement run a second time is run straight on the driver: compiled once by SQLAlchemy for the
dialect (the SQL, the order of its parameters, each type's bind and result processing),
executed on the unit of work's own driver connection, its rows built as named tuples.
Everything else goes through Core, as before:

- PostgreSQL, where a statement is a round trip that dwarfs Core's share, whose deadlines are
  watched by statement events (`taskapi.db.SocketWatchdog`), and whose writers lock the rows
  they read (SQLite has no row locks: its writer holds the database);
- an engine whose statements something listens to (tracing's spans): straight reads would
  go unseen;
- a statement's first run: a statement made for one request (a filtered listing) is run once,
  and compiling a plan for it would cost more than Core, which finds it in its cache;
- a statement whose SQL is completed at execution (an expanding IN list), or whose columns do
  not all have names.

A straight read runs in the unit of work's transaction, as a statement on its connection
would: a reading unit's first straight read begins its snapshot as `taskapi.db` begins it for
Core (a deferred BEGIN, sent to the driver), and returning the connection to the pool rolls it
back; a writing unit has begun before its first statement. Like `connection.execute`, it does
not flush the session's pending objects. A driver error is raised as SQLAlchemy's exception
for it, as Core raises it, so it is answered as any database error is.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

Params = Mapping[str, Any]


def rows(session: Session, statement: Select[Any], params: Params) -> Sequence[Any]:
    """Every row of `statement` run with `params` in `session`'s unit of work."""
    connection = session.connection()
    plan = _plan_for(connection, statement)
    if plan is None:
        return connection.execute(statement, params).all()
    return plan.run(connection, params)


def first_row(session: Session, statement: Select[Any], params: Params) -> Any | None:
    """The first row of `statement` run with `params`, or None when it has none."""
    found = rows(session, statement, params)
    return found[0] if found else None


@dataclass(frozen=True)
class _Plan:
    """What running one statement on SQLite's driver needs, worked out once."""

    sql: str
    # For each `?` in order: the parameter's name, the value the statement carries for it
    # (a literal; None for a parameter the caller must give), and its type's bind processing.
    parameters: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    results: tuple[Callable[[Any], Any] | None, ...]
    row: Callable[[Any], Any]

    def run(self, connection: Connection, params: Params) -> list[Any]:
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        arguments = []
        for name, carried, process in self.parameters:
            value = params[name] if carried is None else params.get(name, carried)
            arguments.append(value if process is None else process(value))
        try:
            if not driver.in_transaction:
                driver.execute("BEGIN")
            fetched = driver.execute(self.sql, arguments).fetchall()
        except sqlite3.Error as error:
            raise DBAPIError.instance(
                self.sql, arguments, error, sqlite3.Error, dialect=connection.dialect
            ) from error
        results, row = self.results, self.row
        return [
            row(
                [
                    value if process is None else process(value)
                    for process, value in zip(results, found, strict=True)
                ]
            )
            for found in fetched
        ]


# A statement's plan once it has one (None: it cannot have one), or the number of times it
# ran through Core before; a statement built for one request takes its entry away with it.
_PLANS: weakref.WeakKeyDictionary[Select[Any], _Plan | int | None] = weakref.WeakKeyDictionary()
# How many runs through Core a statement makes before it gets a plan.
_RUNS_BEFORE_PLAN = 1


def _plan_for(connection: Connection, statement: Select[Any]) -> _Plan | None:
    if connection.dialect.name != "sqlite" or _is_listened_to(connection):
        return None
    known = _PLANS.get(statement, 0)
    if isinstance(known, _Plan) or known is None:
        return known
    if known < _RUNS_BEFORE_PLAN:
        _PLANS[statement] = known + 1
        return None
    plan = _PLANS[statement] = _compiled(statement, connection.dialect)
    return plan


def _is_listened_to(connection: Connection) -> bool:
    dispatch = connection.dispatch
    return bool(
        dispatch.before_execute
        or dispatch.after_execute
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or connection.dialect.dispatch.handle_error
    )


def _compiled(statement: Select[Any], dialect: Dialect) -> _Plan | None:
    """The statement's plan on SQLite, or None when Core must run it: SQL completed at
    execution, a parameter Core fills in, columns without names of their own."""
    compiled = statement.compile(dialect=dialect)
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    names = list(compiled.positiontup or ())
    binds = [compiled.binds[name] for name in names]
    if any(bind.required == (bind.value is not None) for bind in binds):
        return None  # a literal None, or a parameter with a default: Core's business
    columns = list(statement.selected_columns)
    keys = [column.key for column in columns]
    try:
        # Named at run time, from the statement: mypy can only check literal field lists.
        row_type: Any = namedtuple("Row", [k for k in keys if isinstance(k, str)])  # type: ignore[misc]
    except ValueError:  # keys that are not names, or repeat: Core's rows handle those
        return None
    if len(row_type._fields) != len(columns):
        return None
    return _Plan(
        sql=str(compiled),
        parameters=tuple(
            (name, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in zip(names, binds, strict=True)
        ),
        results=tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ),
        row=row_type._make,
    )
