"""Fixtures: a real database per backend, one rolled-back transaction per test, the real app.

Every test that touches the database runs on SQLite and, when TEST_DATABASE_URL is set, on
PostgreSQL too. Each runs inside a transaction that is rolled back at the end (the app's own
commits only release savepoints), so tests share no state and need no clean-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from connexion import AsyncApp
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database, create_engine_for
from taskapi.migrations import upgrade_to_head
from taskapi.settings import Settings

BACKENDS = ["sqlite", "postgresql"]


def _database_url(backend: str, tmp_dir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / 'test.sqlite3'}"
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (make test sets it in CI)")
    return url


def _fresh_schema(engine: Engine) -> None:
    """Start PostgreSQL from nothing, so the migrations themselves are tested every run."""
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _database_url(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    if engine.dialect.name == "postgresql":
        _fresh_schema(engine)
    upgrade_to_head(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture
def database(engine: Engine, connection: Connection) -> Database:
    return Database(engine).bound_to(connection)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session for service tests, inside the test's rolled-back transaction."""
    with database.transaction() as session:
        yield session


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        # Every response is checked against the spec in tests.
        validate_responses=True,
        password_hash_profile="CHEAPEST",
    )


@pytest.fixture
def app(settings: Settings, database: Database) -> AsyncApp:
    return create_app(settings, database=database)


@pytest.fixture
def client(app: AsyncApp) -> Iterator[TestClient]:
    with app.test_client() as client:
        yield client
