"""Real servers for the operational tests: `taskapi serve` with two workers, PostgreSQL reached
through a TCP proxy the tests can cut, and Redis for the shared rate limits.

They need TEST_DATABASE_URL (and use TEST_REDIS_URL when set); without it they are skipped, like
every PostgreSQL test. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from taskapi.migrations import upgrade_to_head
from tests.utils.servers import RunningServer, running_server
from tests.utils.tcp_proxy import TcpProxy
from tools.live_service import scratch_database

# Small pools and short timeouts, so that faults show within a second or two.
FAST_FAILING = {
    "DB_POOL_SIZE": "4",
    "DB_MAX_OVERFLOW": "2",
    "DB_CONNECT_TIMEOUT": "1",
    "DB_POOL_TIMEOUT": "2",
    # A silent database: the client gives up on a statement after 1 s + 1 s of grace, and a
    # request waits 2 s at most for a handler thread.
    "DB_STATEMENT_TIMEOUT_MS": "1000",
    "HANDLER_QUEUE_TIMEOUT": "2",
    "GRACEFUL_TIMEOUT": "10",
    "REQUEST_READ_TIMEOUT": "2",
}


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("operational tests need TEST_DATABASE_URL (make test sets it in CI)")
    return url


@pytest.fixture(scope="session")
def ops_database_url(
    postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A scratch database of this session, migrated."""
    with scratch_database(postgres_server_url, tmp_path_factory.mktemp("ops")) as url:
        upgrade_to_head(url)
        yield url


@pytest.fixture(scope="session")
def ops_database(ops_database_url: str) -> Iterator[Engine]:
    """A direct connection to the scratch database, to look behind the service's back."""
    engine = create_engine(ops_database_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _through(proxy: TcpProxy, url: str) -> str:
    return (
        make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    )


def _new_proxy(url: str) -> TcpProxy:
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    proxy.start()
    return proxy


def _server_env() -> dict[str, str]:
    redis_url = os.environ.get("TEST_REDIS_URL")
    return {**FAST_FAILING, **({"REDIS_URL": redis_url} if redis_url else {})}


@pytest.fixture(scope="session")
def db_proxy(ops_database_url: str) -> Iterator[TcpProxy]:
    proxy = _new_proxy(ops_database_url)
    yield proxy
    proxy.close()


@pytest.fixture(scope="session")
def ops_server(
    ops_database_url: str, db_proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Two workers sharing PostgreSQL (through `db_proxy`) and Redis, for the whole session.

    Tests that cut the database restore it before they end.
    """
    with running_server(
        database_url=_through(db_proxy, ops_database_url),
        workdir=tmp_path_factory.mktemp("ops-server"),
        env=_server_env(),
    ) as server:
        yield server


@pytest.fixture
def own_proxy(ops_database_url: str) -> Iterator[TcpProxy]:
    """A proxy of the test's own, for a server the test stops."""
    proxy = _new_proxy(ops_database_url)
    yield proxy
    proxy.close()


@pytest.fixture
def own_server_settings(
    ops_database_url: str, own_proxy: TcpProxy, tmp_path: Path
) -> dict[str, object]:
    return {
        "database_url": _through(own_proxy, ops_database_url),
        "workdir": tmp_path,
        "env": {**_server_env(), "DB_CONNECT_TIMEOUT": "5"},
    }


def app_connections(engine: Engine) -> int:
    """How many connections the service holds open to the scratch database now."""
    with engine.connect() as connection:
        count: int = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'taskapi'"
            )
        ).scalar_one()
        return count


def kill_app_connections(engine: Engine) -> int:
    """pg_terminate_backend on every connection the service holds: as if the server had
    restarted under it. Only this session's scratch database is touched."""
    with engine.connect() as connection:
        killed: int = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = 'taskapi'"
            )
        ).scalar_one()
        return killed
