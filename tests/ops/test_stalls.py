"""No single request stalls a worker: the costliest request of each operation, at the size
the spec allows and past it (bench/worst.py builds them), is answered promptly, and so is a
health check sent to the same worker while it is being served.

The bound is far above what these cost (milliseconds) and far below what the first of them
once cost (a 60 kB name: 21 s, the health check waiting as long)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
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

    assert 400 <= measured.status < 500, measured  # refused, never a 5xx
    assert max(measured.seconds) < BOUND_SECONDS, measured
    assert max(measured.health_seconds) < BOUND_SECONDS, measured


def _raw_request(base_url: str, head: bytes) -> bytes:
    """Send `head` as a request on a socket of its own; everything the server answers."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        with contextlib.suppress(OSError):  # closed early: what it said is still there
            connection.sendall(head)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_header_fields_past_the_bounds_are_a_431_problem_from_the_server(
    one_worker: RunningServer,
) -> None:
    head = b"GET /v1/healthz HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 40_000 + b"\r\n\r\n"

    answer = _raw_request(one_worker.base_url, head)

    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"content-type: application/problem+json" in answer.lower()


HEAD_FLOOD_BYTES = 64 * 1024 * 1024


def test_a_head_far_past_the_bounds_is_not_even_read(one_worker: RunningServer) -> None:
    """The server stops reading and closes the connection: what the client still had to send
    (far more than socket buffers hold) is refused, and the worker serves on."""
    host, port = one_worker.base_url.removeprefix("http://").split(":")
    line = b"X-Filler: " + b"f" * 8000 + b"\r\n"
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"GET /v1/healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            while sent < HEAD_FLOOD_BYTES:
                connection.sendall(line * 8)
                sent += len(line) * 8
        except OSError:  # reset or broken pipe: the server closed it
            pass

    assert sent < HEAD_FLOOD_BYTES // 2
    assert httpx.get(f"{one_worker.base_url}/v1/healthz", timeout=5).status_code == 200
