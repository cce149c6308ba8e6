"""Migrations: they build the schema the models declare, and stepping down and back up keeps
the data, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from taskapi.db import Database
from taskapi.migrations import alembic_config, current_revisions, head_revision, upgrade_to_head
from taskapi.models import Base, Task
from taskapi.services import task_counts
from tests.conftest import BACKENDS, postgres_server_url
from tests.utils.factories import create_task, create_user
from tools.live_service import scratch_database

# The first revision with a tasks table: below it there is nothing of theirs to keep.
TASKS_SINCE = "0003"
CONCURRENT_MIGRATIONS = 3


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, with nothing in it."""
    server_url = postgres_server_url() if request.param == "postgresql" else None
    with scratch_database(server_url, tmp_path) as url:
        yield url


@pytest.fixture
def migrated(empty_database_url: str) -> Iterator[Database]:
    upgrade_to_head(empty_database_url)
    database = Database.connect(empty_database_url)
    yield database
    database.dispose()


def test_migrations_build_the_schema_the_models_declare(migrated: Database) -> None:
    with migrated.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_stepping_down_and_back_up_keeps_every_task_and_the_counts(
    migrated: Database, empty_database_url: str
) -> None:
    with migrated.transaction(writes=True) as session:
        owner = create_user(session)
        for _ in range(3):
            create_task(session, owner=owner)
    config = alembic_config(empty_database_url)

    while _revision(migrated) != TASKS_SINCE:
        command.downgrade(config, "-1")
        assert _tasks_stored(migrated) == 3, f"tasks lost going down to {_revision(migrated)}"
    command.upgrade(config, "head")

    with migrated.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 3
        assert task_counts.get(session=session, owner_id=owner.id) == 3


def _revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _tasks_stored(database: Database) -> int:
    with database.engine.connect() as connection:
        return connection.scalar(text("SELECT COUNT(*) FROM tasks")) or 0


def test_replicas_migrating_a_new_postgresql_database_at_once_all_succeed(tmp_path: Path) -> None:
    # As replicas started together do: `taskapi serve` migrates first. Processes, as Alembic's
    # context is one per process.
    with scratch_database(postgres_server_url(), tmp_path) as url:
        environment = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp_path)}
        migrations = [
            subprocess.Popen(
                [sys.executable, "-m", "taskapi", "migrate"],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for _ in range(CONCURRENT_MIGRATIONS)
        ]
        failures = [m.communicate(timeout=120)[1] for m in migrations if m.wait(timeout=120)]
        database = Database.connect(url)
        try:
            with database.transaction() as session:
                revisions = current_revisions(session.connection())
        finally:
            database.dispose()

    assert failures == []
    assert revisions == (head_revision(),)
