"""The services' hot reads (`taskapi.statements`): straight on the driver (SQLite's, psycopg) from a
statement's second run in a unit of work, through Core everywhere else, with the same rows."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Date,
    Insert,
    MetaData,
    Select,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from taskapi import statements
from taskapi.db import Database, WriteWhileReadingError
from taskapi.models import RefreshToken, Task, User
from taskapi.models.base import UTCDateTime
from taskapi.services import auth, task_counts, task_listings, tasks
from taskapi.services.pagination import PageRequest
from taskapi.services.task_listings import TaskFilters, TaskListing, TaskSort
from taskapi.services.tokens import AccessClaims
from tests.utils.factories import create_task, create_user

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("id", Uuid, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("due", Date),
    Column("made_at", UTCDateTime, nullable=False),
    Column("tags", JSON, nullable=False),
)
MADE_AT = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
FIRST, SECOND = uuid.UUID(int=1), uuid.UUID(int=2)
BY_NAME = select(THINGS).where(THINGS.c.name == bindparam("name")).order_by(THINGS.c.id)
# How often a statement runs in these tests: enough for its later runs to be straight reads.
RUNS = 3


@pytest.fixture
def things(tmp_path: Path) -> Iterator[Database]:
    """A SQLite database of its own, whose one table has a column of each kind of type."""
    db = Database.connect(f"sqlite:///{tmp_path / 'reads.sqlite3'}")
    METADATA.create_all(db.engine)
    with db.transaction(writes=True) as session:
        session.execute(
            THINGS.insert(),
            [
                {"id": FIRST, "name": "a", "due": date(2026, 5, 6), "made_at": MADE_AT,
                 "tags": ["x", "y"]},
                {"id": SECOND, "name": "a", "due": None, "made_at": MADE_AT, "tags": []},
            ],
        )  # fmt: skip
    yield db
    db.dispose()


def _read_until_straight(session: Session) -> None:
    for _ in range(RUNS):
        statements.rows(session, BY_NAME, {"name": "a"})


def _through_core(session: Session, statement: Any, params: dict[str, Any]) -> list[Any]:
    return list(session.connection().execute(statement, params).all())


@pytest.fixture
def core_runs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The statements Core ran (`Connection.execute`), in order."""
    seen: list[object] = []
    execute = Connection.execute

    def counted(self: Connection, statement: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(statement)
        return execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(Connection, "execute", counted)
    return seen


def test_a_read_run_again_gives_core_s_rows_with_the_same_names_and_types(
    things: Database,
) -> None:
    with things.reading() as session:
        expected = _through_core(session, BY_NAME, {"name": "a"})
        answers = [statements.rows(session, BY_NAME, {"name": "a"}) for _ in range(RUNS)]

    for found in answers:
        assert found == expected
        assert [row._fields for row in found] == [tuple(row._fields) for row in expected]
        assert [[type(value) for value in row] for row in found] == [
            [type(value) for value in row] for row in expected
        ]
    assert answers[-1][0].made_at == MADE_AT
    assert answers[-1][0].made_at.tzinfo is UTC
    assert answers[-1][0].tags == ["x", "y"]


def test_only_a_statement_run_again_is_read_straight(
    things: Database, core_runs: list[object]
) -> None:
    made_once = select(THINGS.c.name).where(THINGS.c.id == bindparam("id"))
    made_for_one_request = select(THINGS.c.id).where(THINGS.c.name == "a")
    with things.reading() as session:
        for _ in range(RUNS):
            statements.rows(session, made_once, {"id": FIRST})
        statements.rows(session, made_for_one_request, {})
    with things.transaction(writes=True) as session:
        answers = [statements.rows(session, made_once, {"id": FIRST}) for _ in range(RUNS)]

    # The first run through Core (whose cache compiles it), every later one straight, in a
    # reading or a writing unit of work; a statement run once, through Core.
    assert core_runs == [made_once, made_for_one_request]
    assert answers == [[("a",)]] * RUNS


class _UndoneError(Exception):
    pass


def _write_and_read_back(database: Database) -> list[int]:
    """How many things named b a writing unit reads before and after adding one, undone."""
    seen = []
    with contextlib.suppress(_UndoneError), database.transaction(writes=True) as session:
        for _ in range(RUNS):
            seen.append(len(statements.rows(session, BY_NAME, {"name": "b"})))
        session.execute(
            THINGS.insert(), {"id": uuid.uuid4(), "name": "b", "made_at": MADE_AT, "tags": []}
        )
        seen.append(len(statements.rows(session, BY_NAME, {"name": "b"})))
        raise _UndoneError
    return seen


def test_a_straight_read_in_a_writing_unit_sees_its_writes_and_is_undone_with_it(
    things: Database,
) -> None:
    assert _write_and_read_back(things) == [0] * RUNS + [1]
    with things.reading() as session:
        assert statements.rows(session, BY_NAME, {"name": "b"}) == []


def test_a_statement_whose_sql_is_completed_at_execution_stays_with_core(
    things: Database, core_runs: list[object]
) -> None:
    expanding = select(THINGS.c.name).where(THINGS.c.id.in_(bindparam("ids", expanding=True)))
    with things.reading() as session:
        answers = [
            statements.rows(session, expanding, {"ids": [FIRST, SECOND]}) for _ in range(RUNS)
        ]

    assert answers == [[("a",), ("a",)]] * RUNS
    assert core_runs == [expanding] * RUNS


def test_literals_in_a_statement_are_sent_with_it_and_can_be_overridden(
    things: Database,
) -> None:
    named = select(THINGS.c.id, literal("tag").label("label")).where(
        THINGS.c.name == bindparam("name", "a")
    )
    with things.reading() as session:
        defaults = [statements.rows(session, named, {}) for _ in range(RUNS)]
        overridden = statements.rows(session, named, {"name": "b"})

    assert defaults == [[(FIRST, "tag"), (SECOND, "tag")]] * RUNS
    assert overridden == []


def test_straight_reads_share_the_unit_of_work_s_snapshot_with_core(things: Database) -> None:
    count = select(func.count()).select_from(THINGS)
    with things.reading() as session:
        statements.rows(session, count, {})
    with things.reading() as session:
        # The unit's first statement is read straight: it begins the snapshot.
        before = [statements.rows(session, count, {})[0][0] for _ in range(RUNS)]
        with things.transaction(writes=True) as writer:
            writer.execute(
                THINGS.insert(),
                {"id": uuid.uuid4(), "name": "b", "made_at": MADE_AT, "tags": []},
            )
        after = (statements.rows(session, count, {})[0][0], session.scalar(count))

    assert (*before, *after) == (2,) * (RUNS + 2)
    with things.reading() as session:
        assert statements.rows(session, count, {})[0][0] == 3


def test_a_core_statement_after_a_straight_read_joins_its_transaction(
    things: Database,
) -> None:
    with things.reading() as session:
        _read_until_straight(session)
        # Core begins the unit's transaction: already begun by the straight reads.
        assert session.connection().scalar(text("SELECT COUNT(*) FROM things")) == 2


def test_a_driver_error_in_a_straight_read_is_raised_as_sqlalchemy_raises_it(
    things: Database,
) -> None:
    with things.reading() as session:
        _read_until_straight(session)
    with things.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE things")

    with pytest.raises(OperationalError, match="no such table"), things.reading() as session:
        statements.rows(session, BY_NAME, {"name": "a"})


INSERT_THING = THINGS.insert()


def _thing(number: int, *, name: str = "b") -> dict[str, Any]:
    return {"id": uuid.UUID(int=100 + number), "name": name, "due": date(2026, 7, number + 1),
            "made_at": MADE_AT, "tags": [f"t{number}"]}  # fmt: skip


def test_an_insert_run_again_is_written_straight_as_core_writes_it(
    things: Database, core_runs: list[object]
) -> None:
    with things.transaction(writes=True) as session:
        for number in range(RUNS):
            statements.write(session, INSERT_THING, _thing(number))
        written = _through_core(session, BY_NAME, {"name": "b"})

    # Only the first run through Core; the rows as Core would have stored them.
    assert [run for run in core_runs if run is INSERT_THING] == [INSERT_THING]
    assert [(row.id, row.due, row.made_at, row.tags) for row in written] == [
        (uuid.UUID(int=100 + n), date(2026, 7, n + 1), MADE_AT, [f"t{n}"]) for n in range(RUNS)
    ]


def test_a_straight_insert_is_undone_with_its_unit_of_work(things: Database) -> None:
    with contextlib.suppress(_UndoneError), things.transaction(writes=True) as session:
        for number in range(RUNS):
            statements.write(session, INSERT_THING, _thing(number))
        raise _UndoneError

    with things.reading() as session:
        assert statements.rows(session, BY_NAME, {"name": "b"}) == []


def test_a_write_in_a_reading_unit_is_refused_straight_or_not(things: Database) -> None:
    with things.transaction(writes=True) as session:
        for number in range(RUNS):  # planned by now
            statements.write(session, INSERT_THING, _thing(number))
    with pytest.raises(WriteWhileReadingError), things.reading() as session:
        statements.write(session, INSERT_THING, _thing(RUNS))


def test_a_straight_insert_that_breaks_a_constraint_raises_as_core_raises_it(
    things: Database,
) -> None:
    with things.transaction(writes=True) as session:
        for number in range(RUNS):  # planned by now
            statements.write(session, INSERT_THING, _thing(number))

    with pytest.raises(IntegrityError), things.transaction(writes=True) as session:
        statements.write(session, INSERT_THING, _thing(0))
    with things.reading() as session:
        assert len(statements.rows(session, BY_NAME, {"name": "b"})) == RUNS


def _account_fields() -> dict[str, Any]:
    return {"id": uuid.uuid4(), "email": f"{uuid.uuid4().hex}@example.com", "name": "Pending",
            "age": 30, "password_hash": "not-a-hash"}  # fmt: skip


def test_a_write_after_changed_objects_flushes_them_first(database: Database) -> None:
    # The task's owner is only added to the session: its row must be written before the task
    # that refers to it, as `session.execute` would flush it (PostgreSQL checks the key).
    for _ in range(RUNS):
        with database.transaction(writes=True) as session:
            owner = User(**_account_fields())
            session.add(owner)
            created = tasks.create(
                session=session, owner_id=owner.id, task_in=tasks.TaskCreate(title="After")
            )
        with database.reading() as session:
            assert tasks.get(session=session, owner_id=owner.id, task_id=str(created.id))


def test_every_read_is_seen_by_statement_listeners(things: Database) -> None:
    # Tracing listens to statements: its spans must see every read, so none is straight.
    seen: list[str] = []

    @event.listens_for(things.engine, "before_cursor_execute")
    def _note(*args: Any) -> None:
        seen.append(args[2])

    with things.reading() as session:
        _read_until_straight(session)

    assert len([sql for sql in seen if "FROM things" in sql]) == RUNS


def _signed_in_owner(
    database: Database, *, tasks_made: int
) -> tuple[User, list[Task], AccessClaims]:
    """A user with `tasks_made` tasks and a live login session, and that session's claims."""
    family = uuid.uuid4()
    with database.transaction(writes=True) as session:
        owner = create_user(session)
        made = [
            create_task(session, owner=owner, title="Hot", tags=["t"], due_date=date(2026, 1, 2))
            for _ in range(tasks_made)
        ]
        session.add(
            RefreshToken(
                user_id=owner.id,
                family_id=family,
                token_hash=uuid.uuid4().hex,
                expires_at=MADE_AT.replace(year=2999),
            )
        )
    return owner, made, AccessClaims(user_id=str(owner.id), token_version=0, session_id=family)


def test_the_services_hot_reads_answer_alike_run_once_or_again(database: Database) -> None:
    # On either backend, in a test's transaction: what `get` and `authenticate` answer on a
    # first run (Core) and on later ones (straight, on SQLite) is the same.
    owner, (task,), claims = _signed_in_owner(database, tasks_made=1)
    with database.reading() as session:
        found = [tasks.get(session=session, owner_id=owner.id, task_id=str(task.id))
                 for _ in range(RUNS)]  # fmt: skip
        callers = [auth.authenticate(session=session, claims=claims) for _ in range(RUNS)]

    assert found[1:] == found[:-1]
    assert (found[0].id, found[0].title, found[0].tags) == (task.id, "Hot", ["t"])
    assert found[0].due_date == date(2026, 1, 2)
    assert found[0].created_at.tzinfo is not None
    assert callers == [auth.Caller(owner.id, owner.role)] * RUNS


def test_the_services_hot_reads_are_read_straight_from_their_second_run(
    database: Database, core_runs: list[object]
) -> None:
    # What an authenticated GET of a task, a page or a cursor slice reads, on either backend
    # (PostgreSQL's socket watchdog listening): none of it may fall back to Core for good (an
    # unnamed column, a literal None, an expanding list).
    owner, (task, _), claims = _signed_in_owner(database, tasks_made=2)
    listing = TaskListing(owner_id=owner.id, filters=TaskFilters(), sort=TaskSort("-created_at"))
    core_runs.clear()
    for _ in range(RUNS):
        with database.reading() as session:
            caller = auth.authenticate(session=session, claims=claims)
            tasks.get(session=session, owner_id=caller.id, task_id=str(task.id))
            page = task_listings.get_all(
                session=session, listing=listing, page=PageRequest(page=1, limit=1)
            )
            after = task_listings.get_all_after(
                session=session, listing=listing, limit=1, after=None, secret=b"s"
            )
            task_listings.get_all_after(
                session=session, listing=listing, limit=1, after=after.next_cursor, secret=b"s"
            )
        assert (page.total, after.next_cursor is not None) == (2, True)

    reads_through_core = [run for run in core_runs if isinstance(run, Select)]
    assert len(reads_through_core) == len(set(map(id, reads_through_core)))  # first runs only


def test_a_listener_besides_the_socket_watchdog_sends_every_read_through_core(
    database: Database, core_runs: list[object]
) -> None:
    # On PostgreSQL the engine's socket watchdog listens to statements and straight reads look
    # past it; one more listener (tracing's) must see every read, on either backend.
    owner, (task,), _ = _signed_in_owner(database, tasks_made=1)
    core_runs.clear()

    def noted(*_: Any) -> None:
        pass

    event.listen(database.engine, "before_cursor_execute", noted)
    try:
        with database.reading() as session:
            for _ in range(RUNS):
                tasks.get(session=session, owner_id=owner.id, task_id=str(task.id))
    finally:
        event.remove(database.engine, "before_cursor_execute", noted)

    assert len([run for run in core_runs if isinstance(run, Select)]) == RUNS


def test_a_create_s_writes_are_straight_from_their_second_run(
    database: Database, core_runs: list[object]
) -> None:
    owner, _, claims = _signed_in_owner(database, tasks_made=0)
    core_runs.clear()
    for number in range(RUNS):
        with database.transaction(writes=True) as session:
            caller = auth.authenticate(session=session, claims=claims, for_writing=True)
            tasks.create(
                session=session, owner_id=caller.id, task_in=tasks.TaskCreate(title=f"N{number}")
            )
    with database.reading() as session:
        total = task_counts.get(session=session, owner_id=owner.id)

    writes_through_core = [run for run in core_runs if isinstance(run, Insert)]
    assert len(writes_through_core) == len(set(map(id, writes_through_core))) <= 2
    assert total == RUNS


def test_straight_statements_on_postgresql_make_no_cursor_per_statement(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("psycopg's cursors: SQLite's driver makes its own in C")
    owner, (task,), claims = _signed_in_owner(database, tasks_made=1)
    made: list[object] = []
    cursor = psycopg.Connection.cursor

    def noted(self: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> Any:
        made.append(self)
        return cursor(self, *args, **kwargs)

    def caller_and_task(session: Session) -> tuple[uuid.UUID, uuid.UUID]:
        return (
            auth.authenticate(session=session, claims=claims).id,
            tasks.get(session=session, owner_id=owner.id, task_id=str(task.id)).id,
        )

    with database.reading() as session:
        for _ in range(RUNS):  # first through Core, then straight on the connection's cursor
            caller_and_task(session)
        monkeypatch.setattr(psycopg.Connection, "cursor", noted)
        found = [caller_and_task(session) for _ in range(RUNS)]
        monkeypatch.undo()  # the unit's own end (a savepoint here) goes through Core

    assert found == [(owner.id, task.id)] * RUNS
    assert made == []
