"""The ways of reaching PostgreSQL that `python -m bench pg-access` measures (bench/pg_access.py)
each do the floor's work for get one task: the same answers, on a real PostgreSQL.

A comparison of strategies means something only if each makes the same checks and answers the
same bytes; each strategy is asked for a task, for a task of nobody, for an id that is none,
and with a token of a session that is not live. Skipped without TEST_DATABASE_URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bench import pg_access, scenarios, seed
from bench.peers import floor_app
from taskapi.settings import Settings
from tests.conftest import postgres_server_url
from tools.live_service import scratch_database

SECRET = "bench-test-signing-secret-that-is-long-enough"
SIZE = 40


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seed.Fixture]:
    server_url = postgres_server_url()
    with (
        pytest.MonkeyPatch.context() as patch,
        scratch_database(server_url, tmp_path_factory.mktemp("postgresql")) as url,
    ):
        patch.setenv("PASSWORD_HASH_PROFILE", "CHEAPEST")
        yield seed.prepare(url, SIZE, log=lambda _: None)


@pytest.fixture(scope="module")
def settings(fixture: seed.Fixture, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=fixture.url,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        jwt_secret=SECRET,
        password_hash_profile="CHEAPEST",
    )


def answers(app: Any, fixture: seed.Fixture) -> list[tuple[int, str | None, Any]]:
    """The app's answers to a task, a missing task, a bad id and a dead session."""
    live = scenarios.access_token(SECRET, fixture.owner_id)
    dead = scenarios.access_token(SECRET, fixture.owner_id, session_id=uuid.uuid4())
    asked = [
        (f"/v1/tasks/{fixture.sample_task_id}", live),
        (f"/v1/tasks/{uuid.uuid4()}", live),
        ("/v1/tasks/not-an-id", live),
        (f"/v1/tasks/{fixture.sample_task_id}", dead),
    ]
    with TestClient(app) as client:
        replies = [client.get(path, headers={"Authorization": f"Bearer {t}"}) for path, t in asked]
    return [(r.status_code, r.headers.get("etag"), r.json()) for r in replies]


@pytest.mark.parametrize("strategy", pg_access.STRATEGIES)
def test_each_way_of_reaching_postgresql_answers_as_the_floor(
    strategy: str, fixture: seed.Fixture, settings: Settings
) -> None:
    floor = answers(floor_app.create_app(settings), fixture)

    got = answers(pg_access.AccessProbe(settings, strategy), fixture)

    assert [status for status, _, _ in floor] == [200, 404, 404, 401]
    assert got[0] == floor[0]  # the same task, the very same JSON and ETag
    assert [status for status, _, _ in got] == [200, 404, 404, 401]
