"""Fixtures: a real database per backend, one rolled-back transaction per test, the real app.

Every test that touches the database runs on SQLite and, when TEST_DATABASE_URL is set, on
PostgreSQL too (in a scratch database of its own). Each runs inside a transaction that is rolled
back at the end (the app's own commits only release savepoints), so tests share no state and
need no clean-up.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from connexion import AsyncApp
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database, create_engine_for
from taskapi.logging_conf import configure_logging
from taskapi.migrations import upgrade_to_head
from taskapi.services import users
from taskapi.settings import Settings
from tests.utils.factories import bearer, log_in, register_user, signed_up
from tools.live_service import scratch_database

BACKENDS = ["sqlite", "postgresql"]


def postgres_server_url() -> str:
    """The PostgreSQL server tests run on; without one, the calling test is skipped."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (make test sets it in CI)")
    return server_url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.sqlite3'}"
        return
    server_url = postgres_server_url()
    # A database of its own for this session: migrations are tested from nothing on every run,
    # and concurrent runs against one server never see each other.
    with scratch_database(server_url, tmp_path_factory.mktemp("postgresql")) as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    upgrade_to_head(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


class PerTestDatabase(Database):
    """The database of the session-wide app, pointed at each test's own connection in turn.

    Building an app costs about a quarter of a second, and most tests need one; a single app per
    backend, whose units of work join whichever test's rolled-back transaction is current,
    keeps the suite fast without giving up isolation.
    """

    def point_at(self, connection: Connection) -> None:
        self._bind_to(connection)


@pytest.fixture(scope="session")
def app_database(engine: Engine) -> PerTestDatabase:
    return PerTestDatabase(engine)


@pytest.fixture
def database(app_database: PerTestDatabase, connection: Connection) -> Database:
    app_database.point_at(connection)
    return app_database


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session for service tests, inside the test's rolled-back transaction."""
    with database.transaction() as session:
        yield session


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        # Every response is checked against the spec in tests.
        validate_responses=True,
        password_hash_profile="CHEAPEST",
        jwt_secret="test-signing-secret-that-is-long-enough",
        # Tests that exercise the limits lower them; the rest must never meet them.
        rate_limit="100000/minute",
        login_rate_limit_per_account_and_client="10000/minute",
        login_rate_limit_per_account="10000/minute",
        login_rate_limit_per_client="10000/minute",
        refresh_rate_limit_per_client="10000/minute",
        registration_rate_limit_per_client="10000/minute",
    )


@pytest.fixture(scope="session")
def session_app(settings: Settings, app_database: PerTestDatabase) -> AsyncApp:
    return create_app(settings, database=app_database)


@pytest.fixture
def app(session_app: AsyncApp, database: Database) -> AsyncApp:
    """The real app, its units of work inside this test's rolled-back transaction."""
    return session_app


@pytest.fixture
def client(app: AsyncApp) -> Iterator[TestClient]:
    with app.test_client() as client:
        yield client


@pytest.fixture
def committing_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A client of an app whose units of work commit for real, for tests of concurrency
    (which one rolled-back transaction, shared by all requests, cannot show). Such tests
    register users of their own and delete them at the end."""
    app = create_app(settings, database=Database(engine))
    with app.test_client() as client:
        yield client


@pytest.fixture
def json_logs() -> Iterator[Any]:
    """The real logging setup, writing into a buffer; yields a reader of the records so far."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    output = io.StringIO()
    configure_logging("DEBUG", stream=output)

    def records() -> list[dict[str, Any]]:
        return [json.loads(line) for line in output.getvalue().splitlines() if line]

    yield records
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture
def user_and_headers(client: TestClient) -> tuple[dict[str, Any], dict[str, str]]:
    """A registered user with the `user` role, and headers carrying their access token."""
    return signed_up(client)


@pytest.fixture
def user_headers(user_and_headers: tuple[dict[str, Any], dict[str, str]]) -> dict[str, str]:
    return user_and_headers[1]


@pytest.fixture
def admin_headers(client: TestClient, database: Database) -> dict[str, str]:
    """Headers carrying an access token of an admin (made the way operators do: not via the API)."""
    user = register_user(client)
    with database.transaction() as session:
        users.promote_to_admin(session=session, email=user["email"])
    return bearer(log_in(client, email=user["email"])["access_token"])
