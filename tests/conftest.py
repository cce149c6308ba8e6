"""Fixtures: a real database per backend, one rolled-back transaction per test, the real app.

Every test that touches the database runs on SQLite and, when TEST_DATABASE_URL is set, on
PostgreSQL too (in a scratch database of its own). Each runs inside a transaction that is rolled
back at the end (the app's own commits only release savepoints), so tests share no state and
need no clean-up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from connexion import AsyncApp
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database, create_engine_for
from taskapi.migrations import upgrade_to_head
from taskapi.services import users
from taskapi.services.passwords import use_password_profile
from taskapi.settings import Settings
from tests.utils.factories import bearer, log_in, register_user, signed_up

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def _scratch_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the TEST_DATABASE_URL server for this test session only.

    Starting from nothing tests the migrations on every run, and concurrent runs against the
    same server cannot see each other.
    """
    name = f"taskapi_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> None:
    """Service tests hash passwords too; production-strength argon2 would dominate the run."""
    use_password_profile("CHEAPEST")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.sqlite3'}"
        return
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (make test sets it in CI)")
    with _scratch_postgres_database(server_url) as url:
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
        jwt_secret="test-signing-secret-that-is-long-enough",
        # Tests that exercise the limits lower them; the rest must never meet them.
        rate_limit="100000/minute",
        login_rate_limit_per_account="10000/minute",
        login_rate_limit_per_client="10000/minute",
    )


@pytest.fixture
def app(settings: Settings, database: Database) -> AsyncApp:
    return create_app(settings, database=database)


@pytest.fixture
def client(app: AsyncApp) -> Iterator[TestClient]:
    with app.test_client() as client:
        yield client


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
