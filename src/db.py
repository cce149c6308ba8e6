"""The database: one engine per process, and the one place where a unit of work begins and ends.

Services receive a `Session` and never commit; `Database.transaction()` commits when the block
succeeds and rolls back when it raises. Every request runs inside exactly one such block
(see `taskapi.web.dependencies`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


class Database:
    def __init__(self, engine: Engine, *, bind: Engine | Connection | None = None) -> None:
        self.engine = engine
        self._sessions = sessionmaker(
            bind=bind if bind is not None else engine,
            expire_on_commit=False,
            # Tests bind to a connection inside an outer transaction; the request's own
            # commit then only releases a savepoint, and the test rolls everything back.
            join_transaction_mode="create_savepoint",
        )

    @classmethod
    def connect(cls, url: str) -> Database:
        return cls(create_engine_for(url))

    def bound_to(self, connection: Connection) -> Database:
        """The same database, with every unit of work nested in `connection`'s transaction."""
        return Database(self.engine, bind=connection)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits when the block ends and rolls back when it raises."""
        with self._sessions() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            session.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def create_engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})
    _use_sqlite_properly(engine)
    return engine


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
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")
