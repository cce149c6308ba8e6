"""Two workers on PostgreSQL and Redis: mixed load, uniqueness races, metrics, slow clients."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.factories import DEFAULT_PASSWORD
from tests.utils.servers import METRICS_TOKEN, RunningServer

CLIENTS = 8
ROUNDS_PER_CLIENT = 6
RACE_ROUNDS = 5


def _unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def _user(email: str) -> dict[str, Any]:
    return {"email": email, "name": "Load Tester", "age": 33, "password": DEFAULT_PASSWORD}


def _one_user_session(client: httpx.Client) -> list[tuple[str, int]]:
    """What a client does: sign up, log in, read and change itself, and make a few mistakes."""
    seen: list[tuple[str, int]] = []
    email = _unique_email("mixed")
    seen.append(("register", client.post("/v1/users", json=_user(email)).status_code))
    seen.append(("duplicate", client.post("/v1/users", json=_user(email)).status_code))
    login = client.post("/v1/auth/token", json={"email": email, "password": DEFAULT_PASSWORD})
    seen.append(("login", login.status_code))
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    seen.append(("me", client.get("/v1/users/me", headers=headers).status_code))
    patch = client.patch(
        "/v1/users/me",
        content=b'{"name": "Renamed"}',
        headers={**headers, "Content-Type": "application/merge-patch+json"},
    )
    seen.append(("rename", patch.status_code))
    seen.append(("invalid", client.post("/v1/users", json={"email": "x"}).status_code))
    seen.append(("anonymous", client.get("/v1/users/me").status_code))
    seen.append(("health", client.get("/v1/healthz").status_code))
    seen.append(("ready", client.get("/v1/readyz").status_code))
    return seen


EXPECTED = {
    "register": 201,
    "duplicate": 409,
    "login": 200,
    "me": 200,
    "rename": 200,
    "invalid": 400,
    "anonymous": 401,
    "health": 200,
    "ready": 200,
}


def test_two_workers_serve_a_mixed_load_without_server_errors(ops_server: RunningServer) -> None:
    def one_client(_: int) -> list[tuple[str, int]]:
        # A keep-alive connection per client; the kernel spreads them over both workers.
        with httpx.Client(base_url=ops_server.base_url, timeout=15) as client:
            return [
                outcome for _ in range(ROUNDS_PER_CLIENT) for outcome in _one_user_session(client)
            ]

    with ThreadPoolExecutor(CLIENTS) as pool:
        sessions = list(pool.map(one_client, range(CLIENTS)))

    outcomes = Counter((kind, status) for seen in sessions for kind, status in seen)
    assert outcomes == Counter(dict.fromkeys(EXPECTED.items(), CLIENTS * ROUNDS_PER_CLIENT))


def test_simultaneous_registrations_of_one_email_give_one_201_and_the_rest_409(
    ops_server: RunningServer,
) -> None:
    for _ in range(RACE_ROUNDS):
        email = _unique_email("race")
        start = threading.Barrier(CLIENTS)

        def register(_: int, email: str = email, start: threading.Barrier = start) -> int:
            # A connection each, so the kernel spreads them over both workers.
            with httpx.Client(base_url=ops_server.base_url, timeout=15) as client:
                start.wait(timeout=10)
                return client.post("/v1/users", json=_user(email)).status_code

        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = Counter(pool.map(register, range(CLIENTS)))

        assert statuses == Counter({201: 1, 409: CLIENTS - 1})


def _sockets_on(port: int, state: str) -> set[str]:
    """The inodes of the TCP sockets on local `port` in `state` (01 established, 0A listening)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(fields[9])
    return inodes


def _established_per_worker(server: RunningServer, port: int) -> list[int]:
    """How many established connections on `port` each worker process holds."""
    established = _sockets_on(port, "01")
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    counts = []
    for pid in children.read_text(encoding="ascii").split():
        if b"spawn_main" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            continue  # multiprocessing's resource tracker, not a worker
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir() if fd.is_symlink()]
        counts.append(sum(link[len("socket:[") : -1] in established for link in links))
    return sorted(counts)


def _wait_for(condition: Callable[[], bool], *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_each_worker_listens_on_its_own_socket_so_a_burst_spreads(
    ops_server: RunningServer,
) -> None:
    host, port_text = ops_server.base_url.removeprefix("http://").rsplit(":", 1)
    port = int(port_text)
    # Workers start one after the other; until the second listens, the first takes everything.
    assert _wait_for(lambda: len(_sockets_on(port, "0A")) == 2, seconds=15)

    # Opened all at once, as a load balancer or a pool of keep-alive clients does: with one
    # shared listening socket, whichever worker woke first would accept the whole burst.
    burst = [socket.create_connection((host, port), timeout=5) for _ in range(16)]
    try:
        _wait_for(lambda: sum(_established_per_worker(ops_server, port)) == 16, seconds=5)
        per_worker = _established_per_worker(ops_server, port)
    finally:
        for connection in burst:
            connection.close()

    # The kernel spreads connections over SO_REUSEPORT sockets (all 16 on one of two workers
    # by chance: 3 in 100,000).
    assert len(per_worker) == 2
    assert sum(per_worker) == len(burst)
    assert min(per_worker) >= 1, per_worker


def test_metrics_count_every_request_whichever_worker_served_it(ops_server: RunningServer) -> None:
    labels = {"operation": "get_health", "method": "GET", "status": "200"}
    before = ops_server.metric("taskapi_http_requests_total", **labels)
    timed_before = ops_server.metric("taskapi_http_request_duration_seconds_count", **labels)

    sent = 40
    # A new connection for each request, so that both workers take some.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=ops_server.base_url, timeout=5, limits=no_reuse) as client:
        for _ in range(sent):
            assert client.get("/v1/healthz").status_code == 200

    assert ops_server.metric("taskapi_http_requests_total", **labels) - before == sent
    assert (
        ops_server.metric("taskapi_http_request_duration_seconds_count", **labels) - timed_before
        == sent
    )


def test_metrics_expose_requests_in_flight_and_the_database_pools(
    ops_server: RunningServer,
) -> None:
    response = httpx.get(
        f"{ops_server.base_url}/v1/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        timeout=5,
    )

    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["taskapi_http_requests"].type == "counter"
    assert families["taskapi_http_request_duration_seconds"].type == "histogram"
    # The scrape itself is in flight while the exposition is built.
    assert sum(s.value for s in families["taskapi_http_requests_in_flight"].samples) >= 1
    # Two workers, each with a pool of 4 + 2 overflow.
    assert sum(s.value for s in families["taskapi_db_pool_capacity"].samples) == 12
    assert "taskapi_db_pool_checked_out" in families
    assert sum(s.value for s in families["taskapi_db_pool_connections"].samples) >= 1


def test_metrics_need_the_configured_token(ops_server: RunningServer) -> None:
    response = httpx.get(f"{ops_server.base_url}/v1/metrics", timeout=5)
    wrong = httpx.get(
        f"{ops_server.base_url}/v1/metrics",
        headers={"Authorization": "Bearer not-the-token"},
        timeout=5,
    )

    for refused in (response, wrong):
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "tag:taskapi.dev,2026:problem/unauthorized"
        assert refused.headers["www-authenticate"].startswith("Bearer ")


def test_a_client_that_never_finishes_its_request_is_disconnected(
    ops_server: RunningServer,
) -> None:
    host, port = ops_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"GET /v1/healthz HTTP/1.1\r\nHost: localhost\r\n")  # never ends
        started = time.monotonic()

        assert slow.recv(1024) == b""  # closed by the server, unanswered
        waited = time.monotonic() - started

    assert 1.5 < waited < 5  # REQUEST_READ_TIMEOUT is 2 s for this server
