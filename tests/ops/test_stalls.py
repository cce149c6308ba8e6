"""No single request stalls a worker: the costliest request of each operation, at the size
the spec allows and past it (bench/worst.py builds them), is answered promptly, and so is a
health check sent to the same worker while it is being served.

The bound is far above what these cost (milliseconds) and far below what the first of them
once cost (a 60 kB name: 21 s, the health check waiting as long)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from bench import worst
from tests.utils.servers import RunningServer, running_server

BOUND_SECONDS = 1.5
ROWS = worst.requests_for("{task}")


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("stalls")
    with running_server(
        database_url=f"sqlite:///{workdir / 'stalls.sqlite3'}", workdir=workdir, workers=1
    ) as server:
        yield server


@pytest.fixture(scope="module")
def signed_up(one_worker: RunningServer) -> tuple[dict[str, str], str]:
    with httpx.Client(base_url=one_worker.base_url, timeout=10) as client:
        return worst.sign_up(client)


@pytest.mark.parametrize(
    "row", ROWS, ids=[f"{r.operation}-{r.what}-{r.size}".replace(" ", "_") for r in ROWS]
)
def test_the_costliest_requests_leave_the_worker_answering_health_checks(
    one_worker: RunningServer, signed_up: tuple[dict[str, str], str], row: worst.Worst
) -> None:
    bearer, task_path = signed_up
    row = dataclasses.replace(row, path=row.path.replace("{task}", task_path))
    with httpx.Client(base_url=one_worker.base_url, timeout=30) as client:
        measured = worst.measure(client, row.headers(bearer), row, rounds=1)

    assert measured.status in (400, 413), measured
    assert max(measured.seconds) < BOUND_SECONDS, measured
    assert max(measured.health_seconds) < BOUND_SECONDS, measured
