"""The unit of work on SQLite: writers of one process take turns, and always pass the turn on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from taskapi.db import Database

WRITERS = 4


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database.connect(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE marks (writer INTEGER)")
    return db


def _count(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(text("SELECT COUNT(*) FROM marks")) or 0)


def test_concurrent_writers_run_one_after_another_and_all_succeed(database: Database) -> None:
    events: list[tuple[str, int]] = []

    def write(writer: int) -> None:
        with database.transaction(writes=True) as session:
            events.append(("start", writer))
            time.sleep(0.02)  # hold the turn long enough for the others to queue behind it
            session.execute(text("INSERT INTO marks VALUES (:w)"), {"w": writer})
            events.append(("end", writer))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    pairs = [events[i : i + 2] for i in range(0, len(events), 2)]
    assert all(start[1] == end[1] for start, end in pairs), events
    assert _count(database) == WRITERS


def test_a_write_that_fails_passes_the_turn_on(database: Database) -> None:
    with pytest.raises(RuntimeError), database.transaction(writes=True):
        raise RuntimeError("the handler failed")

    started = time.monotonic()
    with database.transaction(writes=True) as session:
        session.execute(text("INSERT INTO marks VALUES (1)"))

    # A turn never passed on would make this writer wait out the whole timeout (5 s), then fail.
    assert time.monotonic() - started < 1
    assert _count(database) == 1


def test_readers_do_not_wait_for_a_writer(database: Database) -> None:
    with database.transaction(writes=True) as session:
        session.execute(text("INSERT INTO marks VALUES (1)"))
        assert _count(database) == 0  # WAL: a reader sees the last commit, at once
    assert _count(database) == 1
