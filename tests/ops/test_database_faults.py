"""The database goes away under load: fast 503s with Retry-After, no lost acknowledged write,
no leaked connection, and recovery with no restart."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine, text

from tests.ops.conftest import app_connections, kill_app_connections
from tests.utils.factories import DEFAULT_PASSWORD
from tests.utils.servers import RunningServer
from tests.utils.tcp_proxy import TcpProxy

SERVICE_UNAVAILABLE = "tag:taskapi.dev,2026:problem/service-unavailable"
WRITERS = 6
PHASE_TIMEOUT = 5.0  # no phase waits longer than this for what it expects
RECOVERY_TIMEOUT = 10.0


@dataclass
class Outcome:
    email: str
    status: int  # 0: no response at all
    seconds: float
    user_id: str | None = None
    retry_after: str | None = None


@dataclass
class Writers:
    """Clients registering new users as fast as they can, until told to stop."""

    base_url: str
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, _: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=20) as client:
            while not self.stop.is_set():
                self._write(client)

    def _write(self, client: httpx.Client) -> None:
        email = f"burst-{uuid.uuid4().hex[:16]}@example.com"
        payload = {"email": email, "name": "Burst", "age": 40, "password": DEFAULT_PASSWORD}
        started = time.monotonic()
        try:
            response = client.post("/v1/users", json=payload)
        except httpx.TransportError:
            outcome = Outcome(email, 0, time.monotonic() - started)
        else:
            outcome = Outcome(
                email,
                response.status_code,
                time.monotonic() - started,
                user_id=response.json()["id"] if response.status_code == 201 else None,
                retry_after=response.headers.get("retry-after"),
            )
        with self._lock:
            self.outcomes.append(outcome)

    def count(self, predicate: Callable[[Outcome], bool]) -> int:
        with self._lock:
            return sum(1 for outcome in self.outcomes if predicate(outcome))

    def wait_for(self, predicate: Callable[[Outcome], bool], at_least: int) -> None:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while self.count(predicate) < at_least:
            assert time.monotonic() < deadline, f"fewer than {at_least} such outcomes in time"
            time.sleep(0.02)


def _created(outcome: Outcome) -> bool:
    return outcome.status == 201


def _unavailable(outcome: Outcome) -> bool:
    return outcome.status == 503


def _timed_out_connecting(outcome: Outcome) -> bool:
    return outcome.status == 503 and outcome.seconds >= 0.9  # DB_CONNECT_TIMEOUT is 1 s


def _wait_until_ready(server: RunningServer) -> float:
    started = time.monotonic()
    while httpx.get(f"{server.base_url}/v1/readyz", timeout=5).status_code != 200:
        assert time.monotonic() - started < RECOVERY_TIMEOUT, "no recovery"
        time.sleep(0.05)
    return time.monotonic() - started


def _wait_until_idle(server: RunningServer) -> None:
    """Until the pool gauges (sampled each second) show no connection lent out."""
    deadline = time.monotonic() + PHASE_TIMEOUT
    while server.metric("taskapi_db_pool_checked_out") != 0:
        assert time.monotonic() < deadline, "connections still lent out: leaked?"
        time.sleep(0.1)


def test_readiness_is_503_while_the_database_is_down_and_liveness_stays_200(
    ops_server: RunningServer, db_proxy: TcpProxy
) -> None:
    db_proxy.refuse()
    try:
        started = time.monotonic()
        ready = httpx.get(f"{ops_server.base_url}/v1/readyz", timeout=10)
        failed_in = time.monotonic() - started
        alive = httpx.get(f"{ops_server.base_url}/v1/healthz", timeout=10)
    finally:
        db_proxy.forward()

    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.headers["retry-after"] == "5"
    assert ready.json()["type"] == SERVICE_UNAVAILABLE
    assert failed_in < 1.0
    assert alive.status_code == 200
    _wait_until_ready(ops_server)


def test_acknowledged_writes_survive_killed_connections_and_an_outage(
    ops_server: RunningServer, db_proxy: TcpProxy, ops_database: Engine
) -> None:
    writers = Writers(ops_server.base_url)
    with ThreadPoolExecutor(WRITERS) as pool:
        running = [pool.submit(writers.run, n) for n in range(WRITERS)]
        try:
            writers.wait_for(_created, 30)
            # The server "restarts" under the service: every connection it holds dies.
            for round_ in range(3):
                assert kill_app_connections(ops_database) >= 0
                writers.wait_for(_created, 30 + 20 * (round_ + 1))
            # The host stops answering: connects hang until DB_CONNECT_TIMEOUT (1 s).
            db_proxy.stall_new()
            writers.wait_for(_timed_out_connecting, 3)
            # The server is down: connects are refused at once.
            db_proxy.refuse()
            writers.wait_for(_unavailable, 30)
        finally:
            db_proxy.forward()
        recovered_in = _wait_until_ready(ops_server)
        acknowledged_before = writers.count(_created)
        writers.wait_for(_created, acknowledged_before + 30)  # full service again
        writers.stop.set()
        for writer in running:
            writer.result(timeout=30)

    outcomes = writers.outcomes
    statuses = {outcome.status for outcome in outcomes}
    assert statuses <= {201, 503}, f"unexpected statuses: {statuses}"
    unavailable = [outcome for outcome in outcomes if outcome.status == 503]
    assert all(outcome.retry_after == "5" for outcome in unavailable)
    # Fail fast: within the connect timeout (1 s) plus the wait for a pool slot (2 s).
    slowest_failure = max(outcome.seconds for outcome in unavailable)
    assert slowest_failure < 3.5

    # Every acknowledged write is there, as acknowledged.
    created = {outcome.email: outcome.user_id for outcome in outcomes if outcome.status == 201}
    failed = {outcome.email for outcome in unavailable}
    with ops_database.connect() as connection:
        stored = dict(
            connection.execute(
                text(
                    "SELECT email, id::text FROM users "
                    "WHERE email LIKE 'burst-%' AND password_hash <> ''"
                )
            ).all()
        )
        incomplete = connection.execute(
            text("SELECT count(*) FROM users WHERE email LIKE 'burst-%' AND password_hash = ''")
        ).scalar_one()
    assert {email: stored.get(email) for email in created} == created
    # Nothing else: a row exists only for a write that was acknowledged, or whose answer was
    # lost with its connection after the commit (a 503 the client may retry and get 409).
    assert set(stored) - set(created) <= failed
    assert incomplete == 0

    # No leaked connection: none lent out once the load stops, and no more open than the pools
    # may hold.
    _wait_until_idle(ops_server)
    assert app_connections(ops_database) <= ops_server.metric("taskapi_db_pool_capacity")
    print(  # measured figures, shown with `pytest -s`
        f"\n{len(outcomes)} writes: {len(created)} acknowledged, {len(unavailable)} 503s; "
        f"slowest 503 {slowest_failure:.2f} s; ready again {recovered_in:.2f} s after restore"
    )


# A database that keeps its connections open and never answers (a stuck pooler or proxy):
# the statement's client-side deadline (DB_STATEMENT_TIMEOUT_MS + 1 s = 2 s here) and the wait
# for a handler thread (HANDLER_QUEUE_TIMEOUT, 2 s) bound every answer.
SILENT_BOUND_SECONDS = 6.0
SILENT_CLIENTS = 30  # more than the handler threads of both workers (2 x 6)


def _register(base_url: str, _: int) -> tuple[int, float, str | None]:
    payload = {
        "email": f"silent-{uuid.uuid4().hex[:16]}@example.com",
        "name": "Silent",
        "age": 40,
        "password": DEFAULT_PASSWORD,
    }
    return _answered(lambda: httpx.post(f"{base_url}/v1/users", json=payload, timeout=30))


def _answered(request: Callable[[], httpx.Response]) -> tuple[int, float, str | None]:
    """The status (0: no response), seconds taken and Retry-After of one request."""
    started = time.monotonic()
    try:
        response = request()
    except httpx.TransportError:
        return 0, time.monotonic() - started, None
    return response.status_code, time.monotonic() - started, response.headers.get("retry-after")


def test_a_silent_database_is_answered_503_in_seconds_and_recovered_from(
    ops_server: RunningServer, db_proxy: TcpProxy, ops_database: Engine
) -> None:
    base_url = ops_server.base_url
    assert _register(base_url, 0)[0] == 201  # pooled connections exist
    db_proxy.pause()
    try:
        with ThreadPoolExecutor(SILENT_CLIENTS) as pool:
            burst = list(pool.map(functools.partial(_register, base_url), range(SILENT_CLIENTS)))
            started = time.monotonic()
            alive = httpx.get(f"{base_url}/v1/healthz", timeout=10)
            alive_in = time.monotonic() - started
        started = time.monotonic()
        ready = httpx.get(f"{base_url}/v1/readyz", timeout=30)
        ready_in = time.monotonic() - started
    finally:
        db_proxy.forward()
    recovered_in = _wait_until_ready(ops_server)
    after = _register(base_url, 0)

    assert {status for status, _, _ in burst} == {503}, burst
    assert max(seconds for _, seconds, _ in burst) < SILENT_BOUND_SECONDS
    assert {retry_after for _, _, retry_after in burst} <= {"1", "5"}
    assert alive.status_code == 200
    assert alive_in < 1.0
    assert ready.status_code == 503
    assert "database" in ready.json()["detail"]
    assert ready_in < SILENT_BOUND_SECONDS
    assert after[0] == 201
    _wait_until_idle(ops_server)
    assert app_connections(ops_database) <= ops_server.metric("taskapi_db_pool_capacity")
    assert "Traceback" not in ops_server.log()
    print(  # measured figures, shown with `pytest -s`
        f"\nslowest 503 {max(s for _, s, _ in burst):.2f} s; readiness 503 in {ready_in:.2f} s; "
        f"ready again {recovered_in:.2f} s after restore"
    )


READS_TO_GO_STRAIGHT = 12  # each worker's hot statements run straight from their second run


def _get(client: httpx.Client, path: str) -> tuple[int, float, str | None]:
    return _answered(lambda: client.get(path, timeout=30))


def _create(client: httpx.Client) -> tuple[int, float, str | None]:
    return _answered(lambda: client.post("/v1/tasks", json={"title": "Written"}, timeout=30))


def test_straight_statements_meet_a_silent_or_cut_database_with_503s_and_recover(
    ops_server: RunningServer, db_proxy: TcpProxy, ops_database: Engine
) -> None:
    # Getting a task reads the caller and the task straight on psycopg once warm, and creating
    # one writes the task and its count so: those statements must still be cut by the socket
    # watchdog when the database goes silent, and give up their connection when it is
    # killed, as Core's statements do.
    email = f"straight-{uuid.uuid4().hex[:16]}@example.com"
    account = {"email": email, "name": "Straight", "age": 40, "password": DEFAULT_PASSWORD}
    with httpx.Client(base_url=ops_server.base_url, timeout=30) as client:
        assert client.post("/v1/users", json=account).status_code == 201
        login = {"email": email, "password": DEFAULT_PASSWORD}
        token = client.post("/v1/auth/token", json=login).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        task_id = client.post("/v1/tasks", json={"title": "Read me"}).json()["id"]
        path = f"/v1/tasks/{task_id}"
        warm = [_get(client, path)[0] for _ in range(READS_TO_GO_STRAIGHT)]
        created = [_create(client)[0] for _ in range(READS_TO_GO_STRAIGHT)]

        db_proxy.pause()
        try:
            with ThreadPoolExecutor(SILENT_CLIENTS) as pool:
                silent = list(
                    pool.map(
                        lambda n: _create(client) if n % 2 else _get(client, path),
                        range(SILENT_CLIENTS),
                    )
                )
        finally:
            db_proxy.forward()
        _wait_until_ready(ops_server)
        after_silence = _get(client, path)[0]

        killed = kill_app_connections(ops_database)
        after_kill = [_get(client, path) for _ in range(READS_TO_GO_STRAIGHT)]

    assert warm == [200] * READS_TO_GO_STRAIGHT
    assert created == [201] * READS_TO_GO_STRAIGHT
    assert {status for status, _, _ in silent} == {503}, silent
    assert max(seconds for _, seconds, _ in silent) < SILENT_BOUND_SECONDS
    assert after_silence == 200
    assert killed > 0
    # A read on a killed connection is answered 503 (once per pooled connection at most),
    # and the rest on fresh connections.
    assert {status for status, _, _ in after_kill} <= {200, 503}, after_kill
    assert after_kill[-1][0] == 200
    _wait_until_idle(ops_server)
    assert app_connections(ops_database) <= ops_server.metric("taskapi_db_pool_capacity")
    assert "Traceback" not in ops_server.log()
