"""The benchmark's peers answer each benchmarked request as taskapi does (bench/peers/): FastAPI,
raw Starlette, and the floor (a bare ASGI app on the raw driver).

A fair comparison needs the same work behind every response: same status, same JSON (the very
same bodies where the data is the same), same ETag and Link headers, and cursors that each
service accepts from the others. Runs in-process on a small seeded SQLite database; skipped
unless the bench extra (fastapi) is installed.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

pytest.importorskip("fastapi")

from bench import scenarios, seed
from bench.drive import Call
from taskapi.app import create_app
from taskapi.settings import Settings

SECRET = "bench-test-signing-secret-that-is-long-enough"
SIZE = 400
DEPTH = 3
PEERS = ("fastapi", "starlette", "floor")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> seed.Fixture:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PASSWORD_HASH_PROFILE", "CHEAPEST")
        url = f"sqlite:///{tmp_path_factory.mktemp('bench') / 'bench.sqlite3'}"
        return seed.prepare(url, SIZE, log=lambda _: None)


@pytest.fixture(scope="module")
def clients(
    fixture: seed.Fixture, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, TestClient]]:
    settings = Settings(
        database_url=fixture.url,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        jwt_secret=SECRET,
        password_hash_profile="CHEAPEST",
        validate_responses=True,  # taskapi's own answers are checked against the spec too
        rate_limit="100000/minute",
        login_rate_limit_per_account_and_client="100000/minute",
        login_rate_limit_per_account="100000/minute",
        login_rate_limit_per_client="100000/minute",
        refresh_rate_limit_per_client="100000/minute",
        registration_rate_limit_per_client="100000/minute",
    )
    apps: dict[str, Any] = {"taskapi": create_app(settings)}
    for peer in PEERS:
        apps[peer] = importlib.import_module(f"bench.peers.{peer}_app").create_app(settings)
    with ExitStack() as stack:
        yield {"taskapi": stack.enter_context(apps["taskapi"].test_client())} | {
            peer: stack.enter_context(TestClient(apps[peer])) for peer in PEERS
        }


def answer(client: TestClient, call: Call) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {call.token}"} if call.token else {}
    response = client.request(
        call.method,
        call.path,
        content=call.body,
        headers={**headers, "Content-Type": "application/json"} if call.body else headers,
    )
    kept = {name: response.headers[name] for name in ("etag", "link") if name in response.headers}
    return response.status_code, kept, response.json()


@pytest.mark.parametrize("endpoint", scenarios.ENDPOINTS)
def test_peers_answer_each_benchmarked_request_like_taskapi(
    endpoint: str, fixture: seed.Fixture, clients: dict[str, TestClient]
) -> None:
    chosen = {e.name: e for e in scenarios.endpoints(fixture, SECRET, depth=DEPTH)}[endpoint]
    status, headers, body = answer(clients["taskapi"], chosen.call)
    assert status == chosen.status, body
    for peer in PEERS:
        peer_status, peer_headers, peer_body = answer(clients[peer], chosen.call)
        assert peer_status == status, (peer, peer_body)
        assert scenarios.shape(peer_body) == scenarios.shape(body), peer
        assert peer_headers.keys() == headers.keys(), peer
        if chosen.call.method == "GET":  # same rows, so the very same bytes of JSON
            assert (peer_headers, peer_body) == (headers, body), peer


def test_a_cursor_from_taskapi_walks_on_in_every_peer(
    fixture: seed.Fixture, clients: dict[str, TestClient]
) -> None:
    token = scenarios.access_token(SECRET, fixture.owner_id)
    first = Call(method="GET", path="/v1/tasks?limit=5&cursor=", token=token)
    _, _, body = answer(clients["taskapi"], first)
    following = Call(method="GET", path=body["links"]["next"], token=token)
    pages = {name: answer(client, following)[2] for name, client in clients.items()}
    assert all(pages[peer] == pages["taskapi"] for peer in PEERS)
    assert len(pages["taskapi"]["data"]) == 5


def test_every_service_refuses_a_token_whose_session_is_not_live(
    fixture: seed.Fixture, clients: dict[str, TestClient]
) -> None:
    token = scenarios.access_token(SECRET, fixture.owner_id, session_id=uuid.uuid4())
    call = Call(method="GET", path=f"/v1/tasks/{fixture.sample_task_id}", token=token)

    statuses = {name: answer(client, call)[0] for name, client in clients.items()}

    assert statuses == dict.fromkeys(clients, 401)


def test_a_token_from_the_floors_log_in_is_accepted_by_taskapi(
    fixture: seed.Fixture, clients: dict[str, TestClient]
) -> None:
    credentials = json.dumps({"email": seed.OWNER_EMAIL, "password": seed.PASSWORD})
    _, _, pair = answer(
        clients["floor"], Call(method="POST", path="/v1/auth/token", body=credentials)
    )
    call = Call(
        method="GET", path=f"/v1/tasks/{fixture.sample_task_id}", token=pair["access_token"]
    )

    assert answer(clients["taskapi"], call)[0] == 200
