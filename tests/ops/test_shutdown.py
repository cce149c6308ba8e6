"""SIGTERM while requests are in flight: every one of them is answered, then a clean exit."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.utils.factories import DEFAULT_PASSWORD
from tests.utils.servers import RunningServer, running_server
from tests.utils.tcp_proxy import TcpProxy

IN_FLIGHT = 12
TIMEOUT = 15.0
# Enough that, were half of them sent to a socket nobody accepts on, one would surely be.
CONNECTIONS_AFTER_ONE_STOPPED = 20


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_answers_every_request_in_flight_then_exits_0(
    own_server_settings: dict[str, Any], own_proxy: TcpProxy, ops_database: Engine
) -> None:
    with running_server(**own_server_settings) as server:
        emails = [f"drain-{uuid.uuid4().hex[:12]}@example.com" for _ in range(IN_FLIGHT)]

        def register(email: str) -> int:
            payload = {"email": email, "name": "Drain", "age": 50, "password": DEFAULT_PASSWORD}
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                return client.post("/v1/users", json=payload).status_code

        # Hold the database's answers, so that the requests provably sit inside the workers.
        own_proxy.pause()
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            answers = [pool.submit(register, email) for email in emails]
            # The scrape itself is in flight too, hence the + 1.
            _wait(_in_flight(server, IN_FLIGHT + 1), "the requests to reach the workers")

            terminated_at = time.monotonic()
            server.terminate()
            _wait(_shutting_down(server, workers=2), "both workers to begin shutting down")
            own_proxy.forward()

            statuses = [answer.result(timeout=TIMEOUT) for answer in answers]
        exit_code = server.process.wait(timeout=TIMEOUT)
        drained_in = time.monotonic() - terminated_at

    assert statuses == [201] * IN_FLIGHT
    assert exit_code == 0
    with ops_database.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM users WHERE email = ANY(:emails)"), {"emails": emails}
        ).scalar_one()
    assert stored == IN_FLIGHT
    # Nothing left connected to the database through this server's own proxy.
    _wait(lambda: own_proxy.connections() == 0, "the server's connections to close")
    print(f"\nSIGTERM to exit 0 with {IN_FLIGHT} requests in flight: {drained_in:.2f} s")


def _in_flight(server: RunningServer, expected: int) -> Any:
    return lambda: server.metric("taskapi_http_requests_in_flight") >= expected


def _shutting_down(server: RunningServer, *, workers: int) -> Any:
    return lambda: server.log().count('"message": "Shutting down"') >= workers


def _draining(settings: dict[str, Any], seconds: int) -> dict[str, Any]:
    """`settings` for a server that drains for `seconds` on SIGTERM."""
    return {**settings, "env": {**settings["env"], "DRAIN_SECONDS": str(seconds)}}


def _answer(server: RunningServer, path: str) -> int | None:
    """The status of GET /v1/<path> on a new connection (so that the listener itself must
    accept, and the kernel picks a worker's socket each time); None for a reset or no answer
    within 2 s."""
    try:
        return httpx.get(f"{server.base_url}/v1/{path}", timeout=2).status_code
    except httpx.TransportError:
        return None


def test_sigterm_with_drain_seconds_fails_readiness_first_and_keeps_serving_until_then(
    own_server_settings: dict[str, Any],
) -> None:
    # Long enough for a loaded machine to see both answers before the drain ends.
    drain_seconds = 8
    with running_server(**_draining(own_server_settings, drain_seconds)) as server:
        terminated_at = time.monotonic()
        server.terminate()

        _wait(lambda: _answer(server, "readyz") == 503, "readiness to fail")
        served_while_draining = _answer(server, "healthz")
        drained_before_exit = time.monotonic() - terminated_at < drain_seconds
        exit_code = server.process.wait(timeout=TIMEOUT)
        stopped_after = time.monotonic() - terminated_at

    assert served_while_draining == 200
    assert drained_before_exit
    assert exit_code == 0
    assert stopped_after >= drain_seconds


def _worker_pids(server: RunningServer) -> list[int]:
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", server.log())]


def test_a_worker_that_stops_before_the_others_leaves_no_socket_that_never_answers(
    own_server_settings: dict[str, Any],
) -> None:
    # One worker stops at once (a second SIGTERM, as for one still starting when the first came)
    # while the other drains: new connections must all reach the one still listening.
    drain_seconds = 10
    with running_server(**_draining(own_server_settings, drain_seconds)) as server:
        _wait(lambda: server.log().count("Application startup complete") == 2, "both to start")
        stopping, _ = _worker_pids(server)
        server.terminate()
        _wait(lambda: server.log().count("draining before shutdown") == 2, "both to drain")
        os.kill(stopping, signal.SIGTERM)
        _wait(lambda: f"Finished server process [{stopping}]" in server.log(), "one to stop")

        statuses = [_answer(server, "healthz") for _ in range(CONNECTIONS_AFTER_ONE_STOPPED)]
        exit_code = server.process.wait(timeout=TIMEOUT + drain_seconds)

    assert statuses == [200] * CONNECTIONS_AFTER_ONE_STOPPED
    assert exit_code == 0
