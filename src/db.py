"""The database: one engine per process, and the one place where a unit of work begins and ends.

Services receive a `Session` and never commit; `Database.transaction()` commits when the block
succeeds and rolls back when it raises, and `Database.reading()` gives a session that only
reads. Every request runs inside exactly one such block: reading for GET, HEAD and OPTIONS, a
transaction for the rest (see `taskapi.web.dependencies`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import UpdateBase

from taskapi.private_files import create_private_file
from taskapi.settings import PoolSettings

logger = logging.getLogger(__name__)

# Execution option of the SQLite connection a thread keeps for writing units of work
# (`Database._kept_connection`): its transactions begin with the write lock.
WRITE_INTENT = "taskapi_writes"
# How long a SQLite writer waits for its turn, behind this process's writers or another's.
SQLITE_BUSY_TIMEOUT_MS = 5000
# One writer turn per SQLite engine, shared by every Database on it (see `Database.transaction`).
_WRITER_TURNS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def _writer_turn(engine: Engine) -> threading.Lock | None:
    if engine.dialect.name != "sqlite":
        return None
    return _WRITER_TURNS.setdefault(engine, threading.Lock())


class WriteWhileReadingError(RuntimeError):
    """A unit of work opened with `Database.reading()` tried to write."""


class ReadingSession(Session):
    """A session that refuses to write: a unit of work that said it only reads, and then
    writes, is a bug to be told about, not a change to commit statement by statement.

    It is bound to a connection that `Database.reading` has opened, and hands that connection
    straight to statements that need no unit of work (`session.connection().execute(...)`,
    `rows`, `first_row`): most reads then never make the session set up transaction
    bookkeeping of its own. ORM reads join the connection's transaction as usual, and leave
    it to `Database.reading` to end."""

    _reading_connection: Connection | None = None

    def __init__(self) -> None:
        super().__init__(expire_on_commit=False, join_transaction_mode="rollback_only")

    def bind_to(self, connection: Connection) -> None:
        """Read on `connection` from now on: the session holds nothing between units of work
        (`Database.reading` closes one that did ORM work), so it can serve the next one."""
        self.bind = self._reading_connection = connection

    def connection(self, bind_arguments: Any = None, execution_options: Any = None) -> Connection:
        if bind_arguments is None and execution_options is None:
            assert self._reading_connection is not None, "bound by Database.reading"
            return self._reading_connection
        return super().connection(bind_arguments, execution_options)

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(statement, UpdateBase):
            raise WriteWhileReadingError(f"{statement.__visit_name__} in a reading unit of work")
        return super().execute(statement, *args, **kwargs)

    def flush(self, objects: Any = None) -> None:
        if self.new or self.dirty or self.deleted:
            raise WriteWhileReadingError("changed objects in a reading unit of work")
        super().flush(objects)


class WritingSession(Session):
    """A session that starts its unit of work as a writer only at its first statement, so
    that whatever comes before it (hashing a password) holds no lock and no connection."""

    before_first_statement: Callable[[], None] | None = None

    def get_bind(self, *args: Any, **kwargs: Any) -> Any:
        self._start()
        return super().get_bind(*args, **kwargs)

    def _start(self) -> None:
        if self.before_first_statement is not None:
            start, self.before_first_statement = self.before_first_statement, None
            start()


class StraightWritingSession(WritingSession):
    """The session of a unit of work that begins and ends its transaction on the driver, on a
    connection the unit takes at its first statement (`Database.transaction`): SQLite's kept
    connection, or one of PostgreSQL's pool. It hands that connection straight to statements,
    as `ReadingSession` does: a unit of work whose statements all run straight
    (`taskapi.statements`) never makes the session set up transaction bookkeeping of its own
    (README, "What makes taskapi fast", has what that saves). ORM work joins the connection's
    transaction, and `commit` and `rollback` end them all."""

    unit_connection: Connection | None = None

    def __init__(self) -> None:
        # Joined without a savepoint: the session never commits a transaction it did not
        # begin, and its commit ends the connection's.
        super().__init__(expire_on_commit=False, join_transaction_mode="rollback_only")

    def bind_to(self, connection: Connection | None) -> None:
        """Serve its unit of work on `connection` (None: before its first statement)."""
        self.bind = self.unit_connection = connection

    def connection(self, bind_arguments: Any = None, execution_options: Any = None) -> Connection:
        if bind_arguments or execution_options:
            return super().connection(bind_arguments, execution_options)
        self._start()
        assert self.unit_connection is not None, "bound at the first statement"
        return self.unit_connection

    def commit(self) -> None:
        if self.in_transaction():  # the ORM's work (attaching an object begins it too)
            super().commit()  # flushes; commits the transaction if the session began it
        if self.unit_connection is not None:
            end_transaction(self.unit_connection, commit=True)

    def rollback(self) -> None:
        super().rollback()
        if self.unit_connection is not None:
            end_transaction(self.unit_connection, commit=False)


# The sessions a thread keeps from one unit of work to the next (`_session_of_this_thread`).
_Reused = TypeVar("_Reused", ReadingSession, StraightWritingSession)


class Database:
    def __init__(self, engine: Engine, *, bind: Engine | Connection | None = None) -> None:
        self.engine = engine
        self._writer_turn = _writer_turn(engine)
        self._bind_to(bind if bind is not None else engine)
        # Each thread's sessions (`_session_of_this_thread`) and, on SQLite,
        # its connections, kept between its units of work (`_kept_connection_of_this_thread`);
        # and every connection kept, for `dispose` to close.
        self._kept = threading.local()
        self._all_kept: set[Connection] = set()
        self._kept_lock = threading.Lock()

    def _bind_to(self, bind: Engine | Connection) -> None:
        # Tests bind to a connection inside an outer transaction; the request's own commit
        # then only releases a savepoint, and the test rolls everything back.
        self._sessions = sessionmaker(
            bind=bind,
            class_=WritingSession,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        self._bind = bind
        # Where units of work keep their thread's connections: SQLite's engine (a test's
        # bound connection is its own).
        self._keeps_on: Engine | None = None
        if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
            self._keeps_on = bind

    @classmethod
    def connect(cls, url: str, *, pool: PoolSettings | None = None) -> Database:
        return cls(create_engine_for(url, pool=pool))

    @contextmanager
    def transaction(self, *, writes: bool = False) -> Iterator[Session]:
        """A session whose work commits when the block ends and rolls back when it raises.

        `writes` says the unit of work means to write. SQLite then takes its write lock at
        BEGIN: a transaction that read first and wrote later could otherwise find that another
        writer committed in between and fail, where waiting its turn succeeds.

        On SQLite, writers of this process also wait for their turn on a lock before BEGIN, and
        pass it on once their session is closed. SQLite runs one writer at a time and its busy
        handler makes the others sleep and retry, in naps growing to 100 ms, so most of their
        wait was sleeping past the moment the lock came free; between processes, the busy
        handler still arbitrates. The whole unit of work runs in one thread (one handler call),
        so a writer never waits for a thread while holding the turn.

        Both happen at the unit of work's first statement, not when the block opens, and so
        does taking the unit's connection: on SQLite the one its thread keeps, on PostgreSQL
        one of the pool. The unit runs in a session its thread keeps
        (`StraightWritingSession`), which begins and ends the transaction on the driver.
        """
        with ExitStack() as stack:
            session: WritingSession
            bind = self._bind
            if isinstance(bind, Engine):
                straight = stack.enter_context(self._session_of_this_thread(StraightWritingSession))
                straight.bind_to(None)
                session = straight
            else:  # a test's connection: the session's savepoints in the test's transaction
                session = stack.enter_context(self._sessions())

            def first_statement() -> None:
                # The turn before the connection, so that the connection's transaction has
                # ended, whatever happened, before the turn passes on.
                if writes:
                    stack.enter_context(self._turn(writes=True))
                if isinstance(bind, Engine):
                    # Its first statement begins the transaction: psycopg by itself, SQLite's
                    # driver with the write lock a kept writer connection carries.
                    kept = self._kept_connection_of_this_thread(writes=writes)
                    straight.bind_to(stack.enter_context(kept or bind.connect()))

            session.before_first_statement = first_statement
            try:
                yield session
                session.commit()
            except BaseException:  # a commit that failed too
                session.rollback()
                raise

    @contextmanager
    def reading(self) -> Iterator[ReadingSession]:
        """A session for a unit of work that only reads; a write in it raises
        WriteWhileReadingError.

        On PostgreSQL its statements run without BEGIN and COMMIT (autocommit), which saves
        two round trips per unit of work (README, "What makes taskapi fast", has the saving).
        They see what they would see in a transaction: at READ COMMITTED, PostgreSQL's
        default, each statement of a transaction takes its own snapshot anyway. SQLite keeps
        its transaction, whose one snapshot costs no round trip, ended by ROLLBACK.
        """
        kept = self._kept_connection_of_this_thread(writes=False)
        connection = kept if kept is not None else self._reading_connection()
        with connection as reading_on, self._session_of_this_thread(ReadingSession) as session:
            session.bind_to(reading_on)
            yield session

    @contextmanager
    def _session_of_this_thread(self, kind: type[_Reused]) -> Iterator[_Reused]:
        """The thread's session of `kind`, for its caller to bind: made once per thread, since
        a session costs more to make and to let go than a unit of work's straight statements
        (README, "What makes taskapi fast"). Out of its slot while in use, as kept connections
        are; one that did ORM work is closed, which leaves it empty for the next unit."""
        slot = kind.__name__
        session: _Reused | None = getattr(self._kept, slot, None)
        setattr(self._kept, slot, None)
        if session is None:
            session = kind()
        try:
            yield session
        finally:
            if session.in_transaction() or session.identity_map or session.new:
                session.close()
            setattr(self._kept, slot, session)

    @contextmanager
    def _reading_connection(self) -> Iterator[Connection]:
        if isinstance(self._bind, Connection):
            # A test's connection, inside its transaction: read in a savepoint of it, so that
            # a statement that fails there leaves the test's transaction usable.
            with self._bind.begin_nested():
                yield self._bind
            return
        with self._bind.connect() as connection:
            if connection.dialect.name != "postgresql":
                yield connection
                return
            # Switched on the driver: SQLAlchemy's isolation_level option does the same at
            # several times the cost, most of it undoing itself when the connection goes back
            # to the pool (README, "What makes taskapi fast").
            driver = connection.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            driver.autocommit = True
            try:
                yield connection
            finally:
                _leave_autocommit(connection, driver)

    def _kept_connection_of_this_thread(
        self, *, writes: bool
    ) -> contextlib.AbstractContextManager[Connection] | None:
        """On SQLite, the connection this thread keeps for units of work that read (`writes`
        False) or write, from one unit to the next; None elsewhere (PostgreSQL's units take
        pooled connections, and a test's bound connection is its own).

        Checking a connection out of the pool and back in costs several times what the
        statements of a unit of work do (README, "What makes taskapi fast", has the figures),
        and on SQLite it guards against nothing: no server can close the connection or be
        restarted behind it, as the pool's checks on PostgreSQL's connections are for. A
        thread's writer begins each transaction with the write lock, its reader without; between
        units neither holds a transaction, and so no lock.
        """
        if self._keeps_on is None:
            return None
        return self._kept_connection(self._keeps_on, writes=writes)

    @contextmanager
    def _kept_connection(self, engine: Engine, *, writes: bool) -> Iterator[Connection]:
        slot = "writer" if writes else "reader"
        # Taken out of its slot while in use: a unit nested in this one, of the same kind and
        # in the same thread, must not end this one's transaction: it takes another.
        kept: Connection | None = getattr(self._kept, slot, None)
        setattr(self._kept, slot, None)
        if kept is None or kept.closed:  # closed: by `dispose`
            # A writer's every transaction takes the write lock at its BEGIN (`begin_on_driver`).
            kept = engine.connect().execution_options(**{WRITE_INTENT: writes})
            with self._kept_lock:
                self._all_kept.add(kept)
        try:
            yield kept
        finally:
            if self._ended_transaction(kept) and getattr(self._kept, slot) is None:
                setattr(self._kept, slot, kept)
            else:
                self._forget(kept)

    def _ended_transaction(self, connection: Connection) -> bool:
        """Roll back what the unit left open (nothing, once a writing unit has committed),
        through SQLAlchemy (Core's autobegin, the ORM) or on the driver (a straight read,
        `taskapi.statements`); False when the connection could not."""
        try:
            end_transaction(connection, commit=False)
        except Exception:
            logger.warning("a kept SQLite connection could not end its transaction", exc_info=True)
            return False
        return True

    def _forget(self, connection: Connection) -> None:
        """Close a kept connection (the pool discards one that is broken)."""
        with self._kept_lock:
            self._all_kept.discard(connection)
        with contextlib.suppress(Exception):
            connection.close()

    @contextmanager
    def _turn(self, writes: bool) -> Iterator[None]:
        if not writes or self._writer_turn is None:
            yield
            return
        if not self._writer_turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("BEGIN IMMEDIATE", None, locked)
        try:
            yield
        finally:
            self._writer_turn.release()

    def dispose(self) -> None:
        """Close every connection: the pool's, and those threads kept (they are idle by now;
        a thread that reads again takes a new one)."""
        with self._kept_lock:
            kept = list(self._all_kept)
        for connection in kept:
            self._forget(connection)
        self.engine.dispose()


def _leave_autocommit(connection: Connection, driver: psycopg.Connection[Any]) -> None:
    """Give the pool back a connection out of autocommit, as every other unit of work expects
    it; one that cannot be (a statement cut short, a connection lost) is discarded instead."""
    if not connection.invalidated and driver.info.transaction_status == TransactionStatus.IDLE:
        driver.autocommit = False
    else:
        connection.invalidate()


def create_engine_for(url: str, *, pool: PoolSettings | None = None) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _create_server_engine(url, pool or PoolSettings())
    if parsed.database and parsed.database != ":memory:":
        # Created here, 0600, before SQLite would create it with the umask's permissions.
        create_private_file(Path(parsed.database))
    # Each thread keeps its own connections (`Database._kept_connection_of_this_thread`): it
    # never waits for one, however many threads there are.
    engine = create_engine(url, connect_args={"check_same_thread": False}, max_overflow=-1)
    _use_sqlite_properly(engine)
    return engine


def _create_server_engine(url: str, pool: PoolSettings) -> Engine:
    # A sync engine with psycopg 3: handlers run in threads, and measured on this stack sync
    # beat async drivers (docs/deployment.md).
    options = f"-c statement_timeout={pool.statement_timeout_ms}"  # 0 is PostgreSQL's "none"
    engine = create_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout,
        pool_recycle=pool.recycle,
        connect_args={
            "connect_timeout": pool.connect_timeout,
            "options": options,
            # A peer that vanishes without a FIN (a partition) is noticed in seconds, not hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            # ...and so is one that stops acknowledging what we send.
            "tcp_user_timeout": 10_000,
            "application_name": "taskapi",
        },
    )
    _replace_connections_the_server_closed(engine)
    if pool.statement_timeout_ms:
        SocketWatchdog((pool.statement_timeout_ms + CLIENT_GRACE_MS) / 1000).watch(engine)
    return engine


# How much longer than the server's statement timeout the client waits for its answer: the
# server's own cancellation, and its error message, come first when the server is there.
CLIENT_GRACE_MS = 1000


class SocketWatchdog:
    """Closes the socket of a connection whose statement, commit or rollback has gone
    unanswered for `seconds`.

    The server's statement_timeout cannot help when the server never got the statement (a
    stuck pooler or proxy that keeps the TCP connection alive), and neither can TCP keepalives
    or tcp_user_timeout, which the proxy's own TCP stack satisfies; libpq itself waits for an
    answer without end. Shutting the socket down wakes the waiting thread with an error: the
    connection is discarded, and the request is answered 503.
    """

    _TICK = 0.05  # seconds between looks at the deadlines

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadlines: dict[Any, tuple[float, int]] = {}  # pool record -> (deadline, socket)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # How many listeners it added to each of the engine's events: straight statements
        # (`taskapi.statements`) look past these, and arm the watchdog themselves (`guarding`).
        self.listeners: Counter[str] = Counter()

    def watch(self, engine: Engine) -> None:
        """Arm before each statement, commit and rollback; disarm when it is answered, and
        when the connection goes back to the pool or is discarded (before its socket closes,
        so that a socket number the system reuses is never shut down)."""
        arm, disarm = self._arm, self._disarm

        def listen(name: str, listener: Callable[..., Any]) -> None:
            event.listen(engine, name, listener)
            self.listeners[name] += 1

        listen("before_cursor_execute", lambda conn, *_: arm(conn))
        listen("commit", arm)
        listen("rollback", arm)
        listen("after_cursor_execute", lambda conn, *_: disarm(_record(conn)))
        # A statement that fails (a constraint, the server's own timeout) is answered too.
        listen("handle_error", self._disarm_after)
        event.listen(engine.pool, "checkin", lambda _dbapi, record: disarm(record))
        event.listen(engine.pool, "invalidate", lambda _dbapi, record, _exc: disarm(record))
        _WATCHDOGS[engine] = self

    @contextmanager
    def guarding(self, connection: Connection) -> Iterator[None]:
        """A statement sent on `connection`'s driver directly, watched as Core's are."""
        self._arm(connection)
        try:
            yield
        finally:
            self._disarm(_record(connection))

    def _arm(self, connection: Connection) -> None:
        if connection.invalidated:  # a rollback after its connection was discarded: no I/O
            return
        socket_fd: int = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
        with self._lock:
            self._deadlines[_record(connection)] = (time.monotonic() + self.seconds, socket_fd)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()

    def _disarm_after(self, context: ExceptionContext) -> None:
        connection = context.connection
        if connection is not None and not connection.invalidated:
            self._disarm(_record(connection))

    def _disarm(self, record: Any) -> None:
        with self._lock:
            self._deadlines.pop(record, None)

    def _run(self) -> None:
        while True:
            time.sleep(self._TICK)
            now = time.monotonic()
            with self._lock:
                for record, (deadline, socket_fd) in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[record]
                        _shut_down(socket_fd)


# The watchdog of each engine that has one.
_WATCHDOGS: weakref.WeakKeyDictionary[Engine, SocketWatchdog] = weakref.WeakKeyDictionary()


def watchdog_of(engine: Engine) -> SocketWatchdog | None:
    """The socket watchdog watching `engine`'s statements, if any."""
    return _WATCHDOGS.get(engine)


def _record(connection: Connection) -> Any:
    """The pool's record of the connection: it outlives each DBAPI connection it holds."""
    return connection.connection._connection_record


def _shut_down(socket_fd: int) -> None:
    """Shut a socket down in both directions, whoever holds it (its fd stays open)."""
    duplicate = socket.socket(fileno=os.dup(socket_fd))
    with contextlib.suppress(OSError), duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)


def _replace_connections_the_server_closed(engine: Engine) -> None:
    """Check each connection as it leaves the pool, without a round trip to the server.

    A server that restarts, fails over or terminates a backend closes the connection, after
    a last error message; a connection idle in the pool then has something to read, which it
    never has otherwise. The pool replaces such a connection and checks out again, so the
    service recovers from an outage by itself. `pool_pre_ping` finds the same by sending a
    query at every checkout: one more round trip for every request.

    A connection that dies silently (a network partition) is not seen here, nor reliably by
    a ping; its statements fail within `tcp_user_timeout`, and the request gets a 503.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        idle = select.poll()
        idle.register(dbapi_connection.fileno(), select.POLLIN)
        if idle.poll(0):
            raise DisconnectionError("the server closed this pooled connection")


def sqlite_error(
    connection: Connection, sql: str, arguments: Any, error: sqlite3.Error
) -> StatementError:
    """The exception SQLAlchemy raises for `error`, met running `sql` on `connection`'s driver
    straight (`OperationalError` for a lock: answered 503), as Core would have raised it."""
    return DBAPIError.instance(sql, arguments, error, sqlite3.Error, dialect=connection.dialect)


def begin_on_driver(connection: Connection) -> None:
    """Begin a transaction on a SQLite connection's driver, unless one has begun: at the first
    statement of a unit of work, straight (`taskapi.statements`) or through Core. On a connection
    that writes (`WRITE_INTENT`), with the write lock: BEGIN IMMEDIATE, which may wait out the
    busy timeout, its failure raised as SQLAlchemy's OperationalError (answered 503) as Core
    raises a statement's. Else deferred, which takes no lock, so never waits."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    if driver.in_transaction:
        return
    sql = "BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE_INTENT) else "BEGIN"
    try:
        driver.execute(sql)
    except sqlite3.Error as error:
        raise sqlite_error(connection, sql, (), error) from error


def end_transaction(connection: Connection, *, commit: bool) -> None:
    """Commit or roll back what a connection has open: Core's transaction (its autobegin, or
    the ORM's), and the driver's that SQLAlchemy does not know of (straight statements',
    `taskapi.statements`), a failure raised as SQLAlchemy's exception. A connection that was
    lost (invalidated) has nothing left to end."""
    if connection.invalidated:
        return
    if connection.in_transaction():
        connection.commit() if commit else connection.rollback()
    sql = "COMMIT" if commit else "ROLLBACK"
    driver = connection.connection.driver_connection
    if isinstance(driver, psycopg.Connection):
        if driver.info.transaction_status != TransactionStatus.IDLE:
            with on_postgresql_driver(connection, sql, None):
                driver.commit() if commit else driver.rollback()
        return
    assert isinstance(driver, sqlite3.Connection)
    if driver.in_transaction:
        try:
            driver.commit() if commit else driver.rollback()
        except sqlite3.Error as error:
            raise sqlite_error(connection, sql, (), error) from error


@contextmanager
def on_postgresql_driver(connection: Connection, sql: str, arguments: Any) -> Iterator[None]:
    """Around a call on `connection`'s psycopg connection, what Core does around its own: the
    socket watchdog's deadline, a psycopg error raised as SQLAlchemy's exception for it, and a
    connection the error says is lost invalidated (the pool's other connections are then
    checked as they leave it)."""
    watchdog = watchdog_of(connection.engine)
    try:
        with watchdog.guarding(connection) if watchdog is not None else contextlib.nullcontext():
            yield
    except psycopg.Error as error:
        lost = connection.dialect.is_disconnect(error, connection.connection, None)  # type: ignore[arg-type]
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql,
            arguments,
            error,
            psycopg.Error,
            dialect=connection.dialect,
            connection_invalidated=lost,
        ) from error


def _use_sqlite_properly(engine: Engine) -> None:
    """Make pysqlite behave like a real transactional database.

    The driver opens transactions lazily and cannot nest them, which breaks SAVEPOINTs; taking
    BEGIN into our own hands fixes that (SQLAlchemy's documented recipe). WAL lets readers run
    beside a writer; busy_timeout makes a second writer wait instead of failing at once.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight to the driver, without the execution context and result SQLAlchemy builds
        # around a statement (README, "What makes taskapi fast", has what that saves a writing
        # unit of work). Nor is a BEGIN a span when tracing is on.
        begin_on_driver(connection)
