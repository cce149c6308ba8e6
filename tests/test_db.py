"""The database layer: on SQLite, writers of one process take turns and always pass the turn
on; a reading unit of work refuses to write, reads one snapshot on SQLite, and on PostgreSQL
runs without a transaction; a
pooled connection the server closed is replaced before it is used; a busy pool does not
reconnect."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, create_engine, event, func, insert, make_url, select, table, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from taskapi.db import (
    CLIENT_GRACE_MS,
    Database,
    WriteWhileReadingError,
    create_engine_for,
)
from taskapi.models import User
from taskapi.settings import PoolSettings
from taskapi.statements import first_row, write
from tests.conftest import postgres_server_url
from tests.utils.tcp_proxy import TcpProxy

WRITERS = 4


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database.connect(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE marks (writer INTEGER)")
    yield db
    db.dispose()


def _count(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(text("SELECT COUNT(*) FROM marks")) or 0)


def test_concurrent_writers_run_one_after_another_and_all_succeed(database: Database) -> None:
    events: list[tuple[str, int]] = []

    def write(writer: int) -> None:
        with database.transaction(writes=True) as session:
            # The first statement takes the writer's turn.
            session.execute(text("INSERT INTO marks VALUES (:w)"), {"w": writer})
            events.append(("start", writer))
            time.sleep(0.02)  # hold the turn long enough for the others to queue behind it
            events.append(("end", writer))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    pairs = [events[i : i + 2] for i in range(0, len(events), 2)]
    assert all(start[1] == end[1] for start, end in pairs), events
    assert _count(database) == WRITERS


def test_a_writer_holds_no_turn_before_its_first_statement(database: Database) -> None:
    """What a writing unit of work does before touching the database (hashing a password)
    does not keep other writers waiting."""
    opened, other_done = threading.Event(), threading.Event()

    def slow_to_start() -> None:
        with database.transaction(writes=True) as session:
            opened.set()
            other_done.wait(timeout=10)
            session.execute(text("INSERT INTO marks VALUES (1)"))

    slow = threading.Thread(target=slow_to_start)
    slow.start()
    opened.wait(timeout=10)
    started = time.monotonic()
    with database.transaction(writes=True) as session:
        session.execute(text("INSERT INTO marks VALUES (2)"))
    waited = time.monotonic() - started
    other_done.set()
    slow.join(timeout=10)

    assert waited < 1  # against the 5 s a held turn would make it wait, then fail
    assert _count(database) == 2


def test_a_write_that_fails_passes_the_turn_on(database: Database) -> None:
    with pytest.raises(RuntimeError), database.transaction(writes=True):
        raise RuntimeError("the handler failed")

    started = time.monotonic()
    with database.transaction(writes=True) as session:
        session.execute(text("INSERT INTO marks VALUES (1)"))

    # A turn never passed on would make this writer wait out the whole timeout (5 s), then fail.
    assert time.monotonic() - started < 1
    assert _count(database) == 1


def test_a_writer_kept_from_the_write_lock_fails_as_sqlalchemy_s_error_and_writes_later(
    tmp_path: Path,
) -> None:
    # Two engines on one file: to each other, the writers of two processes (no shared turn),
    # so the second meets SQLite's lock itself; its busy timeout cut to keep the test short.
    url = f"sqlite:///{tmp_path / 'locked.sqlite3'}"
    holder, waiter = Database.connect(url), Database.connect(url)
    shorter = "PRAGMA busy_timeout=50"
    event.listen(waiter.engine, "connect", lambda driver, _: driver.execute(shorter))
    with holder.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE marks (writer INTEGER)")

    def write(database: Database, writer: int) -> None:
        with database.transaction(writes=True) as session:
            session.execute(insert(MARKS).values(writer=writer))

    try:
        with holder.transaction(writes=True) as holding:
            holding.execute(insert(MARKS).values(writer=1))
            with pytest.raises(OperationalError, match="database is locked"):  # answered 503
                write(waiter, 2)
        write(waiter, 2)  # the same thread's writer, once the lock is free

        assert _count_read(waiter) == 2
    finally:
        holder.dispose()
        waiter.dispose()


def test_readers_do_not_wait_for_a_writer(database: Database) -> None:
    with database.transaction(writes=True) as session:
        session.execute(text("INSERT INTO marks VALUES (1)"))
        assert _count(database) == 0  # WAL: a reader sees the last commit, at once
    assert _count(database) == 1


def test_a_reading_unit_of_work_refuses_to_write(database: Database) -> None:
    marks = table("marks", column("writer"))
    with pytest.raises(WriteWhileReadingError), database.reading() as session:
        session.execute(insert(marks).values(writer=1))
    with database.reading() as session:
        session.add(User(email="a@example.com", name="A", age=30, password_hash="x"))
        with pytest.raises(WriteWhileReadingError):
            session.flush()

    assert _count(database) == 0


def test_a_reading_unit_of_work_on_sqlite_reads_one_snapshot(database: Database) -> None:
    count = text("SELECT COUNT(*) FROM marks")
    with database.reading() as session:
        before = session.connection().scalar(count)
        with database.transaction(writes=True) as writer:
            writer.execute(text("INSERT INTO marks VALUES (1)"))
        # The session's own statements and those on its connection share the snapshot.
        after = (session.scalar(count), session.connection().scalar(count))

    assert (before, *after) == (0, 0, 0)
    assert _count(database) == 1


def _reader_of(session: Session) -> object:
    """The driver connection a reading unit of work runs on."""
    return session.connection().connection.driver_connection


MARKS = table("marks", column("writer"))
COUNT_MARKS = select(func.count().label("marks")).select_from(MARKS)


def test_a_thread_keeps_its_sqlite_reading_connection_and_each_unit_reads_the_latest_commit(
    database: Database,
) -> None:
    # Each unit reads three ways: a statement run straight on the driver after its first run
    # (`taskapi.statements`), Core on the connection, and the ORM session. Were a unit's
    # snapshot left open on the kept connection, the next unit would not see the next commit.
    seen, readers = [], []
    for writer in range(3):
        with database.reading() as session:
            readers.append(_reader_of(session))
            seen.append(
                (
                    _straight_count(session),
                    session.connection().scalar(COUNT_MARKS),
                    session.scalar(COUNT_MARKS),
                )
            )
        with database.transaction(writes=True) as writing:
            writing.execute(insert(MARKS).values(writer=writer))

    assert seen == [(0, 0, 0), (1, 1, 1), (2, 2, 2)]
    assert all(reader is readers[0] for reader in readers)


def test_a_thread_keeps_one_sqlite_connection_for_writing_and_another_for_reading(
    database: Database,
) -> None:
    writers, readers = [], []
    for writer in range(2):
        with database.transaction(writes=True) as writing:
            writing.execute(insert(MARKS).values(writer=writer))
            writers.append(_reader_of(writing))
            with database.reading() as session:
                readers.append(_reader_of(session))
                assert _straight_count(session) == writer  # the last commit, not this write

    assert writers[0] is writers[1]
    assert readers[0] is readers[1]
    assert writers[0] is not readers[0]
    assert _count_read(database) == 2


INSERT_MARK = insert(MARKS)
INSERT_ORPHAN = insert(table("orphans", column("parent")))


def _marks(database: Database, marks: Any = MARKS) -> list[int]:
    with database.reading() as session:
        return sorted(session.scalars(select(marks.c.writer)))


def _in_a_session_transaction_after_a_straight_write(database: Database, inserting: Any) -> bool:
    """Whether a writing unit's session set up a transaction of its own for a straight write
    (the insert's first run, before it, goes through Core), its two marks committed."""
    with database.transaction(writes=True) as session:
        write(session, inserting, {"writer": 1})
    with database.transaction(writes=True) as session:
        write(session, inserting, {"writer": 2})  # straight on the driver
        return session.in_transaction()


def test_a_writing_unit_of_straight_writes_commits_them_without_a_session_transaction(
    database: Database,
) -> None:
    assert _in_a_session_transaction_after_a_straight_write(database, INSERT_MARK) is False
    assert _marks(database) == [1, 2]


@pytest.mark.parametrize("orm_first", [True, False], ids=["orm-first", "straight-first"])
def test_a_writing_unit_commits_its_straight_and_orm_writes_together_or_neither(
    database: Database, orm_first: bool
) -> None:
    def write_both(session: Session, first: int, then_fail: bool = False) -> None:
        steps = [
            lambda: session.execute(text("INSERT INTO marks VALUES (:w)"), {"w": first}),
            lambda: write(session, INSERT_MARK, {"writer": first + 1}),
        ]
        for step in steps if orm_first else reversed(steps):
            step()
        if then_fail:
            raise LookupError

    with database.transaction(writes=True) as session:
        write(session, INSERT_MARK, {"writer": 0})  # the insert's first run: the next are straight
    with pytest.raises(LookupError), database.transaction(writes=True) as session:
        write_both(session, 10, then_fail=True)
    with database.transaction(writes=True) as session:
        write_both(session, 20)

    assert _marks(database) == [0, 20, 21]


def test_a_writing_unit_flushes_and_commits_the_objects_it_added_after_straight_writes(
    database: Database,
) -> None:
    User.metadata.create_all(database.engine, tables=[User.__table__])  # type: ignore[list-item]
    with database.transaction(writes=True) as session:
        write(session, INSERT_MARK, {"writer": 0})
    with database.transaction(writes=True) as session:
        write(session, INSERT_MARK, {"writer": 1})
        session.add(User(email="a@example.com", name="A", age=30, password_hash="x"))

    with database.reading() as session:
        assert session.scalars(select(User.email)).all() == ["a@example.com"]
    assert _marks(database) == [0, 1]


def test_a_writing_unit_that_commits_before_it_raises_keeps_what_it_committed(
    database: Database,
) -> None:
    """As an error that persists the unit's changes does (`DomainError.persist_changes`)."""
    with database.transaction(writes=True) as session:
        write(session, INSERT_MARK, {"writer": 0})

    def commit_then_fail() -> None:
        with database.transaction(writes=True) as session:
            write(session, INSERT_MARK, {"writer": 1})
            session.commit()
            write(session, INSERT_MARK, {"writer": 2})
            raise LookupError

    with pytest.raises(LookupError):
        commit_then_fail()

    assert _marks(database) == [0, 1]


def test_a_failed_writing_unit_ends_its_transaction_before_the_turn_passes_on(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the unit raised or its commit failed: else the next writer of the process,
    given the turn, meets SQLite's lock still held and sleeps in its busy handler."""
    turn, drivers, open_when_passed = database._writer_turn, [], []
    assert turn is not None

    class WatchedTurn:
        def acquire(self, timeout: float) -> bool:
            return turn.acquire(timeout=timeout)

        def release(self) -> None:
            open_when_passed.append(drivers[-1].in_transaction)
            turn.release()

    def write_then_fail(writer: int) -> None:
        with database.transaction(writes=True) as session:
            write(session, INSERT_MARK, {"writer": writer})
            drivers.append(session.connection().connection.driver_connection)
            raise LookupError

    def commit_failing(_: int) -> None:
        # A deferred foreign key is checked at COMMIT, which fails and leaves the transaction
        # open.
        with database.transaction(writes=True) as session:
            write(session, INSERT_ORPHAN, {"parent": 1})
            drivers.append(session.connection().connection.driver_connection)

    with database.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql(
            "CREATE TABLE orphans (parent INTEGER REFERENCES parents (id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )
    monkeypatch.setattr(database, "_writer_turn", WatchedTurn())
    for fail, error in [(write_then_fail, LookupError), (commit_failing, IntegrityError)]:
        for writer in range(2):  # through Core, then straight on the driver
            with pytest.raises(error):
                fail(writer)

    assert open_when_passed == [False] * 4
    assert _marks(database) == []
    with database.transaction(writes=True) as session:  # the kept connection writes again
        write(session, INSERT_MARK, {"writer": 1})
    assert _marks(database) == [1]


def test_a_thread_reuses_its_writing_session_emptied_by_a_unit_that_added_objects(
    database: Database,
) -> None:
    User.metadata.create_all(database.engine, tables=[User.__table__])  # type: ignore[list-item]
    added = User(email="a@example.com", name="A", age=30, password_hash="x")
    with database.transaction(writes=True) as first:
        first.add(added)
        assert first.identity_map or first.new  # the unit holds the user it added
    with database.transaction(writes=True) as second:
        reused_empty = (second is first, len(second.identity_map), second.in_transaction())
        write(second, INSERT_MARK, {"writer": 1})

    assert reused_empty == (True, 0, False)
    assert _marks(database) == [1]


def test_a_unit_nested_in_one_of_its_kind_leaves_the_outer_snapshot_alone(
    database: Database,
) -> None:
    _count_read(database)  # the thread now keeps a reading connection
    with database.reading() as outer:
        before = _straight_count(outer)
        with database.reading() as inner:
            assert _reader_of(inner) is not _reader_of(outer)
        with database.transaction(writes=True) as writing:
            writing.execute(insert(MARKS).values(writer=1))
        after = _straight_count(outer)

    assert (before, after) == (0, 0)
    assert _count_read(database) == 1


def test_a_thread_reuses_its_reading_session_emptied_by_a_unit_that_loaded_objects(
    database: Database,
) -> None:
    User.metadata.create_all(database.engine, tables=[User.__table__])  # type: ignore[list-item]
    with database.transaction(writes=True) as writing:
        writing.add(User(email="a@example.com", name="A", age=30, password_hash="x"))

    with database.reading() as first:
        loaded = first.scalars(select(User)).all()
        assert first.identity_map  # the unit holds the user it loaded
    with database.reading() as second:
        reused_empty = (second is first, len(second.identity_map), second.in_transaction())

    assert len(loaded) == 1
    assert reused_empty == (True, 0, False)


def test_a_reading_unit_that_raised_leaves_no_snapshot_on_the_kept_connection(
    database: Database,
) -> None:
    def read_then_fail() -> None:
        with database.reading() as session:
            first_row(session, COUNT_MARKS, {})
            first_row(session, COUNT_MARKS, {})  # straight: begun on the driver
            raise LookupError

    with pytest.raises(LookupError):
        read_then_fail()
    with database.transaction(writes=True) as writing:
        writing.execute(insert(MARKS).values(writer=1))

    with database.reading() as session:
        assert _straight_count(session) == 1


def test_threads_read_on_sqlite_connections_of_their_own(database: Database) -> None:
    both_reading = threading.Barrier(2, timeout=10)
    readers: list[object] = []

    def read() -> None:
        with database.reading() as session:
            readers.append(_reader_of(session))
            session.scalar(COUNT_MARKS)
            both_reading.wait()

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(readers) == 2
    assert readers[0] is not readers[1]


def test_a_kept_sqlite_connection_core_found_broken_is_replaced(database: Database) -> None:
    with database.reading() as session:
        broken = _reader_of(session)
        session.connection().invalidate()

    with database.reading() as session:
        assert _reader_of(session) is not broken
        assert session.scalar(COUNT_MARKS) == 0


def test_a_kept_sqlite_connection_that_cannot_end_its_snapshot_is_let_go(
    database: Database,
) -> None:
    with database.reading() as session:
        first_row(session, COUNT_MARKS, {})
        broken = _reader_of(session)
        broken.close()  # type: ignore[attr-defined]

    with database.reading() as session:
        assert _reader_of(session) is not broken
        assert _straight_count(session) == 0


def test_dispose_closes_the_sqlite_connections_threads_kept(database: Database) -> None:
    pool: Any = database.engine.pool
    reader = threading.Thread(target=lambda: _count_read(database))
    reader.start()
    reader.join(timeout=10)
    _count_read(database)
    assert pool.checkedout() == 2  # kept by this thread and the reader, both idle

    database.dispose()

    assert pool.checkedout() == 0
    assert _count_read(database) == 0  # this thread reads again, on a new connection


def _straight_count(session: Session) -> int:
    """The marks counted by `taskapi.statements` (straight on the driver once run before)."""
    row = first_row(session, COUNT_MARKS, {})
    assert row is not None
    return int(row.marks)


def _count_read(database: Database) -> int:
    with database.reading() as session:
        return int(session.scalar(COUNT_MARKS) or 0)


@pytest.fixture
def postgres() -> Iterator[Database]:
    db = Database.connect(postgres_server_url())
    yield db
    db.dispose()


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(postgres: Database) -> None:
    with postgres.transaction() as session:
        first = session.scalar(text("SELECT pg_backend_pid()"))
    _terminate(postgres.engine.url.render_as_string(hide_password=False), first)

    # The pool holds only that connection: without a check at checkout, this would fail.
    with postgres.transaction() as session:
        replaced = session.scalar(text("SELECT pg_backend_pid()"))

    assert replaced != first


def _terminate(url: str, pid: int) -> None:
    """End the server's side of connection `pid`, as a restart would, and wait until it has."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ):
                time.sleep(0.02)
    finally:
        admin.dispose()


@pytest.fixture
def postgres_of_one_connection() -> Iterator[Database]:
    """A database on the PostgreSQL server whose pool holds one connection: each unit of work
    gets the one the unit before it gave back, or its replacement."""
    db = Database.connect(postgres_server_url(), pool=PoolSettings(size=1))
    yield db
    db.dispose()


def _pid(session: Session) -> int:
    return int(session.scalar(text("SELECT pg_backend_pid()")))


def _now_twice(session: Session) -> tuple[Any, Any]:
    """now() twice, 10 ms apart: the transaction's start, so equal within one transaction and
    apart when each statement runs on its own."""
    first = session.scalar(text("SELECT now()"))
    time.sleep(0.01)
    return first, session.scalar(text("SELECT now()"))


@pytest.fixture
def postgres_marks(postgres_of_one_connection: Database) -> Iterator[Any]:
    """A table of marks of this test's own on the PostgreSQL server, dropped after it."""
    marks = table(f"marks_{uuid.uuid4().hex}", column("writer"))
    with postgres_of_one_connection.engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE {marks.name} (writer INTEGER)")
    yield marks
    with postgres_of_one_connection.engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE {marks.name}")


def test_a_writing_unit_on_postgresql_commits_straight_writes_without_a_session_transaction(
    postgres_of_one_connection: Database, postgres_marks: Any
) -> None:
    db = postgres_of_one_connection
    assert _in_a_session_transaction_after_a_straight_write(db, insert(postgres_marks)) is False
    assert _marks(db, postgres_marks) == [1, 2]


def test_a_failed_writing_unit_on_postgresql_leaves_its_connection_out_of_any_transaction(
    postgres_of_one_connection: Database, postgres_marks: Any
) -> None:
    db, inserting = postgres_of_one_connection, insert(postgres_marks)

    def write_then_fail(writer: int) -> None:
        with db.transaction(writes=True) as session:
            write(session, inserting, {"writer": writer})
            raise LookupError

    for writer in range(2):  # through Core, then straight on the driver
        with pytest.raises(LookupError):
            write_then_fail(writer)
    with db.transaction(writes=True) as session:  # the pool's one connection, reused
        write(session, inserting, {"writer": 2})
        first, second = _now_twice(session)

    assert first == second  # one transaction, not a statement left in autocommit
    assert _marks(db, postgres_marks) == [2]


def test_a_writing_unit_whose_connection_was_lost_fails_as_lost_and_the_next_writes_again(
    postgres_of_one_connection: Database, postgres_marks: Any
) -> None:
    db, inserting = postgres_of_one_connection, insert(postgres_marks)
    url = db.engine.url.render_as_string(hide_password=False)
    backend = select(func.pg_backend_pid().label("pid"))
    with db.transaction(writes=True) as session:  # first runs, through Core
        write(session, inserting, {"writer": 0})
        first_row(session, backend, {})

    def lose_the_connection_then_commit() -> None:
        with db.transaction(writes=True) as session:  # straight: committed on the driver
            write(session, inserting, {"writer": 1})
            _terminate(url, first_row(session, backend, {}).pid)

    with pytest.raises(OperationalError):  # answered 503
        lose_the_connection_then_commit()
    with db.transaction(writes=True) as session:
        write(session, inserting, {"writer": 2})

    assert _marks(db, postgres_marks) == [0, 2]


def test_a_straight_read_after_its_connection_was_replaced_runs_on_the_new_one(
    postgres_of_one_connection: Database,
) -> None:
    db = postgres_of_one_connection
    backend = select(func.pg_backend_pid().label("pid"))
    with db.reading() as session:
        first = [first_row(session, backend, {}).pid for _ in range(3)]  # straight after one
    _terminate(db.engine.url.render_as_string(hide_password=False), first[0])
    with db.reading() as session:  # the pool replaces the connection the server closed
        second = [first_row(session, backend, {}).pid for _ in range(3)]

    assert len(set(first)) == len(set(second)) == 1
    assert second[0] != first[0]


def test_a_reading_unit_of_work_on_postgresql_runs_each_statement_on_its_own(
    postgres: Database,
) -> None:
    with postgres.reading() as session:
        first, second = _now_twice(session)

    assert second > first


def test_a_connection_read_on_in_autocommit_is_lent_again_for_one_transaction(
    postgres_of_one_connection: Database,
) -> None:
    db = postgres_of_one_connection
    with db.reading() as session:
        read_on = _pid(session)
    # The pool's one connection again: its statements in one transaction, as before.
    with db.transaction() as session:
        writing_on = _pid(session)
        first, second = _now_twice(session)

    assert writing_on == read_on
    assert second == first


def test_a_reading_unit_whose_connection_was_lost_fails_as_lost_and_the_next_reads_again(
    postgres_of_one_connection: Database,
) -> None:
    db = postgres_of_one_connection
    lost: list[int] = []

    def read_on_a_lost_connection() -> None:
        with db.reading() as session:
            lost.append(_pid(session))
            _terminate(db.engine.url.render_as_string(hide_password=False), lost[0])
            session.scalar(text("SELECT 1"))

    with pytest.raises(OperationalError):
        read_on_a_lost_connection()
    with db.reading() as session:
        replaced = _pid(session)
        first, second = _now_twice(session)

    assert replaced != lost[0]
    assert second > first  # in autocommit, as every reading unit


def test_a_reading_unit_that_leaves_a_transaction_open_has_its_connection_discarded(
    postgres_of_one_connection: Database,
) -> None:
    db = postgres_of_one_connection
    with db.reading() as session:
        connection = session.connection()  # straight, as `taskapi.statements` reads
        left_open = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        connection.exec_driver_sql("BEGIN")
    with db.transaction() as session:
        lent_next = _pid(session)

    assert lent_next != left_open


def test_a_thread_reuses_its_reading_session_on_postgresql_emptied_after_orm_work(
    postgres: Database,
) -> None:
    with postgres.reading() as first:
        first.scalar(text("SELECT 1"))  # through the ORM session: it begins its transaction
        assert first.in_transaction()
    with postgres.reading() as second:
        reused = (second is first, second.in_transaction())
        second_on = second.connection()
    with postgres.reading() as third:
        assert third.connection() is not second_on  # each unit's own pooled connection

    assert reused == (True, False)
    assert third is first


def test_a_pool_lending_every_connection_at_once_keeps_them_all_open() -> None:
    # A worker's handler threads (one per connection the pool can lend) all hold one in a
    # burst of load, then give them back in a lull. Were any closed on return, as overflow
    # connections are, every burst would open new ones: a server process forked each time.
    pool = PoolSettings()
    db = Database.connect(postgres_server_url(), pool=pool)
    opened: list[object] = []
    event.listen(db.engine, "connect", lambda connection, _record: opened.append(connection))
    all_lent = threading.Barrier(pool.capacity, timeout=10)
    all_returned = threading.Barrier(pool.capacity, timeout=10)

    def bursts() -> None:
        for _ in range(3):
            with db.reading() as session:
                session.execute(text("SELECT 1"))
                all_lent.wait()
            all_returned.wait()

    threads = [threading.Thread(target=bursts) for _ in range(pool.capacity)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        db.dispose()

    assert len(opened) == pool.capacity


@pytest.fixture
def silent_proxy() -> Iterator[TcpProxy]:
    server = make_url(postgres_server_url())
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    proxy.start()
    yield proxy
    proxy.close()


def test_a_statement_on_a_silent_link_fails_at_its_client_deadline_and_the_pool_recovers(
    silent_proxy: TcpProxy,
) -> None:
    url = make_url(postgres_server_url()).set(host="127.0.0.1", port=silent_proxy.port)
    pool = PoolSettings(statement_timeout_ms=500, connect_timeout=1)
    engine = create_engine_for(url.render_as_string(hide_password=False), pool=pool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        silent_proxy.pause()  # the connection stays open; nothing comes back
        started = time.monotonic()
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        failed_in = time.monotonic() - started
        silent_proxy.forward()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()

    # 500 ms of statement timeout and the client's grace of CLIENT_GRACE_MS.
    assert 0.5 + CLIENT_GRACE_MS / 1000 - 0.1 < failed_in < 3.0
    assert engine.pool.checkedout() == 0


def test_a_slow_statement_is_cancelled_by_the_server_not_cut_by_the_client() -> None:
    pool = PoolSettings(statement_timeout_ms=300)
    engine = create_engine_for(postgres_server_url(), pool=pool)
    try:
        with pytest.raises(OperationalError, match="statement timeout"), engine.connect() as c:
            c.execute(text("SELECT pg_sleep(2)"))
        with engine.connect() as connection:  # the same connection serves on
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
