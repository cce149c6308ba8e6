"""Three `taskapi serve` replicas behind HAProxy, on PostgreSQL and Redis, for the session.

`make scale-test` runs these (after `.ci/ensure-haproxy`); `.ci/run` does in CI. They need
TEST_DATABASE_URL and TEST_REDIS_URL: without them they are skipped with the reason shown, except
in CI, where that is a failure. Tests that stop or kill a replica start it again before they end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from tools.live_service import scratch_database
from tools.replica_set import ReplicaSet, replica_set

REPLICAS = 3


@pytest.fixture(scope="session")
def services() -> tuple[str, str]:
    """(PostgreSQL server URL, Redis URL) the replicas share."""
    database, redis = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if not (database and redis):
        reason = "the scale tests need TEST_DATABASE_URL and TEST_REDIS_URL"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must set both (.ci/run does)")
        pytest.skip(f"{reason} (make scale-test with both set)")
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed: bash .ci/ensure-haproxy (make scale-test runs it)")
    return database, redis


@pytest.fixture(scope="session")
def scale_database_url(
    services: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with scratch_database(services[0], tmp_path_factory.mktemp("scale-db")) as url:
        yield url


@pytest.fixture(scope="session")
def cluster(
    services: tuple[str, str], scale_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReplicaSet]:
    with replica_set(
        count=REPLICAS,
        database_url=scale_database_url,
        redis_url=services[1],
        workdir=tmp_path_factory.mktemp("scale"),
    ) as replicas:
        yield replicas


@pytest.fixture(scope="session")
def scale_database(scale_database_url: str) -> Iterator[Engine]:
    """A direct connection to the replicas' database, to look behind their backs."""
    engine = create_engine(scale_database_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()
