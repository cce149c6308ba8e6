"""Running the services' hot statements: SELECTs and INSERTs made once, on the models' tables.

`rows` and `first_row` run a SELECT with its bound parameters in the request's unit of work
and answer its rows, which name their columns as Core's rows do (`row.title`, `row[0]`);
`write` runs an INSERT of one row (a task, a count's share) there.

Through Core, a statement costs several times what the driver spends on it: each gets an
execution context, a result object and its events, where the driver's own call is a few
microseconds on SQLite and little more than the round trip on PostgreSQL (README, "What makes
taskapi fast", has the figures). So a statement run a second time is run straight on the
driver: compiled once by SQLAlchemy for the dialect (the SQL, its parameters, each type's bind
and result processing), executed on the unit of work's own driver connection, its rows built
as named tuples. Everything else goes through Core, as before:

- an engine whose statements something listens to (tracing's spans) besides PostgreSQL's
  socket watchdog (`taskapi.db.SocketWatchdog`, which straight statements arm themselves):
  straight, they would go unseen;
- a statement's first run: a statement made for one request (a filtered listing) is run once,
  and compiling a plan for it would cost more than Core, which finds it in its cache;
- a statement whose SQL is completed at execution (an expanding IN list), whose columns do not
  all have names, or whose values Core fills in (defaults); an INSERT with RETURNING;
- a dialect other than SQLite's and PostgreSQL's (psycopg).

A straight statement runs in the unit of work's transaction, as a statement on its connection
would. On SQLite, a reading unit's first straight read begins its snapshot as `taskapi.db`
begins it for Core (a deferred BEGIN, sent to the driver), and returning the connection to the
pool rolls it back; a writing unit has begun before its first statement. On PostgreSQL a
reading unit's connection is in autocommit (`Database.reading`), and in a writing unit psycopg
begins the transaction at its first statement, whoever sends it. A read, like
`connection.execute`, does not flush the session's pending objects; a write, like
`session.execute`, flushes them first, and a reading unit refuses it. A driver error is raised
as SQLAlchemy's exception for it, as Core raises it, so it is answered as any database error
is; a PostgreSQL connection the error says is lost is invalidated, as Core invalidates it (the
pool's other connections are then checked as they leave it, `taskapi.db`).
"""

from __future__ import annotations

import sqlite3
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Insert, Select
from sqlalchemy.engine import Compiled, Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.crud import REQUIRED

from taskapi.db import (
    ReadingSession,
    begin_on_driver,
    on_postgresql_driver,
    sqlite_error,
    watchdog_of,
)

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


def write(session: Session, statement: Insert, params: Params) -> None:
    """Run the INSERT `statement` with the values in `params` (one row) in `session`'s unit of
    work, as `session.execute` would: objects pending in the session are flushed first, and a
    unit of work that only reads refuses it."""
    if isinstance(session, ReadingSession) or session.new or session.dirty or session.deleted:
        session.execute(statement, params)  # which refuses, or flushes first
        return
    connection = session.connection()
    plan = _plan_for(connection, statement, column_keys=tuple(params))
    if plan is None:
        connection.execute(statement, params)
        return
    plan.run(connection, params)


@dataclass(frozen=True)
class _Plan:
    """What running one statement on the driver needs, worked out once."""

    sql: str
    # For each parameter, in the order of the SQL's `?` when `positional`: its name, the value
    # the statement carries for it (a literal; None for a parameter the caller must give), and
    # its type's bind processing.
    parameters: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    positional: bool
    # For a SELECT: each column's result processing, and what makes a row of the values; an
    # INSERT answers no rows.
    results: tuple[Callable[[Any], Any] | None, ...]
    row: Callable[[Any], Any] | None

    def run(self, connection: Connection, params: Params) -> list[Any]:
        values = []
        for name, carried, process in self.parameters:
            value = params[name] if carried is None else params.get(name, carried)
            values.append(value if process is None else process(value))
        arguments: Sequence[Any] | dict[str, Any] = (
            values
            if self.positional
            else {name: value for (name, _, _), value in zip(self.parameters, values, strict=True)}
        )
        fetched = _DRIVERS[connection.dialect.name](
            connection, self.sql, arguments, fetch=self.row is not None
        )
        results, row = self.results, self.row
        if row is None:
            return []
        return [
            row(
                [
                    value if process is None else process(value)
                    for process, value in zip(results, found, strict=True)
                ]
            )
            for found in fetched
        ]


Arguments = Sequence[Any] | Mapping[str, Any]


def _on_sqlite(connection: Connection, sql: str, arguments: Arguments, *, fetch: bool) -> list[Any]:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    if not driver.in_transaction:
        begin_on_driver(connection)
    try:
        cursor = driver.execute(sql, arguments)
        return cursor.fetchall() if fetch else []
    except sqlite3.Error as error:
        raise sqlite_error(connection, sql, arguments, error) from error


def _on_postgresql(
    connection: Connection, sql: str, arguments: Arguments, *, fetch: bool
) -> list[Any]:
    cursor = _cursor_of(connection)
    with on_postgresql_driver(connection, sql, arguments):
        cursor.execute(sql, arguments)
        return cursor.fetchall() if fetch else []


def _cursor_of(connection: Connection) -> psycopg.Cursor[Any]:
    """The cursor straight statements use on `connection`'s driver connection, made once:
    psycopg's `Connection.execute` makes a cursor, and its adapters, for every statement
    (README, "What makes taskapi fast", has what that costs). It lives in the pool's `info`
    for that driver connection, which SQLAlchemy empties when it replaces the connection."""
    info = connection.connection.info
    cursor: psycopg.Cursor[Any] | None = info.get(_CURSOR)
    if cursor is None:
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        cursor = info[_CURSOR] = driver.cursor()
    return cursor


_CURSOR = "taskapi_statements_cursor"


# How a plan is run, by dialect: the dialects that have plans.
_DRIVERS: dict[str, Callable[..., list[Any]]] = {
    "sqlite": _on_sqlite,
    "postgresql": _on_postgresql,
}


# By statement, dialect and the columns an INSERT is given: the statement's plan once it has
# one (None: it cannot have one), or the number of times it ran through Core before; a
# statement built for one request takes its entries away with it. (A process serves one
# dialect; tests run both.)
PlanKey = tuple[str, tuple[str, ...] | None]
_PLANS: weakref.WeakKeyDictionary[Executable, dict[PlanKey, _Plan | int | None]] = (
    weakref.WeakKeyDictionary()
)
# How many runs through Core a statement makes before it gets a plan.
_RUNS_BEFORE_PLAN = 1


def _plan_for(
    connection: Connection, statement: Executable, *, column_keys: tuple[str, ...] | None = None
) -> _Plan | None:
    dialect = connection.dialect
    if dialect.name not in _DRIVERS or _is_listened_to(connection):
        return None
    known_by_key = _PLANS.get(statement)
    if known_by_key is None:
        known_by_key = _PLANS[statement] = {}
    key = (dialect.name, column_keys)
    known = known_by_key.get(key, 0)
    if isinstance(known, _Plan) or known is None:
        return known
    if known < _RUNS_BEFORE_PLAN:
        known_by_key[key] = known + 1
        return None
    plan = known_by_key[key] = _compiled(statement, dialect, column_keys)
    return plan


_STATEMENT_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)


_NO_LISTENERS: Mapping[str, int] = {}


def _is_listened_to(connection: Connection) -> bool:
    """Whether anything but the engine's socket watchdog listens to its statements (on the
    engine, where tracing listens: a connection's own listeners would cost every read a look
    at them)."""
    engine = connection.engine
    watchdog = watchdog_of(engine)
    own = watchdog.listeners if watchdog is not None else _NO_LISTENERS
    dispatch = engine.dispatch
    # dict.get: a Counter's own lookup of a missing key is a call to Python code, and this
    # runs for every statement.
    return any(
        len(getattr(dispatch, name)) > own.get(name, 0) for name in _STATEMENT_EVENTS
    ) or len(connection.dialect.dispatch.handle_error) > own.get("handle_error", 0)


def _compiled(
    statement: Executable, dialect: Dialect, column_keys: tuple[str, ...] | None
) -> _Plan | None:
    """The statement's plan for `dialect`, or None when Core must run it: not a SELECT or an
    INSERT without RETURNING, SQL completed at execution, a parameter Core fills in, columns
    without names of their own."""
    if not isinstance(statement, Select | Insert) or (
        isinstance(statement, Insert) and len(statement.exported_columns)
    ):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(column_keys or ()))
    if compiled.post_compile_params or compiled.literal_execute_params:
        return None
    parameters = _parameters(compiled, dialect)
    answers = _answers(statement, dialect) if isinstance(statement, Select) else ((), None)
    if parameters is None or answers is None:
        return None
    results, row = answers
    return _Plan(
        sql=str(compiled),
        parameters=parameters,
        positional=compiled.positional,
        results=results,
        row=row,
    )


def _parameters(
    compiled: Compiled, dialect: Dialect
) -> tuple[tuple[str, Any, Callable[[Any], Any] | None], ...] | None:
    """Each parameter's name, the literal it carries (None: the caller gives its value) and
    its bind processing; None when Core fills one in (a default) or a literal is None."""
    assert isinstance(compiled, SQLCompiler)
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    binds = [compiled.binds[name] for name in names]
    carried = [None if bind.value is REQUIRED else bind.value for bind in binds]
    if any(
        bind.required == (value is not None) for bind, value in zip(binds, carried, strict=True)
    ):
        return None
    return tuple(
        (name, value, bind.type.dialect_impl(dialect).bind_processor(dialect))
        for name, bind, value in zip(names, binds, carried, strict=True)
    )


def _answers(
    statement: Select[Any], dialect: Dialect
) -> tuple[tuple[Callable[[Any], Any] | None, ...], Callable[[Any], Any]] | None:
    """Each column's result processing and what makes a row of the values; None when the
    columns do not all have names of their own (Core's rows handle those)."""
    columns = list(statement.selected_columns)
    keys = [column.key for column in columns]
    try:
        # Named at run time, from the statement: mypy can only check literal field lists.
        row_type: Any = namedtuple("Row", [k for k in keys if isinstance(k, str)])  # type: ignore[misc]
    except ValueError:  # keys that are not names, or repeat
        return None
    if len(row_type._fields) != len(columns):
        return None
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return results, row_type._make
