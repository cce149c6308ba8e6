"""What is measured: the endpoints, the checks before loading, and the interleaved rounds."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import seed
from bench.drive import Call, Measurement, wrk
from bench.peers.common import encode_cursor
from bench.serve import ROOT, Server
from taskapi.services.tokens import TokenIssuer

LIMIT = 20
SERVICES = ("taskapi", "fastapi", "starlette", "floor")
ENDPOINTS = (
    "get_task",
    "list_page_1",
    "list_cursor_deep",
    "list_page_deep",
    "create_task",
    "login",
)
TASK_BODY = json.dumps(
    {"title": "Benchmark task", "priority": "high", "due_date": "2026-12-31", "tags": ["bench"]}
)


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    name: str
    label: str
    call: Call
    status: int = 200
    argon2: bool = False  # log in: bound by password hashing, reported apart


@dataclass(frozen=True, kw_only=True)
class Load:
    """How hard and how long each measurement drives a service."""

    seconds: float
    warmup: float
    rounds: int
    connections: int
    login_connections: int
    wrk_cpu: str | None


def server_env(url: str, secret: str) -> dict[str, str]:
    """The environment every service gets: same database, same secret, data under var/."""
    return {"DATABASE_URL": url, "JWT_SECRET": secret, "DATA_DIR": str(ROOT / "var" / "bench")}


def access_token(
    secret: str, user_id: Any, *, session_id: uuid.UUID = seed.BENCH_SESSION_ID
) -> str:
    """A bearer token for `user_id` in the login session `session_id` (the benchmark's, kept
    alive by the seed), made as taskapi makes them, valid for the whole run."""
    issuer = TokenIssuer(
        secret=secret,
        issuer="taskapi",
        audience="taskapi",
        access_ttl=timedelta(hours=12),
        refresh_ttl=timedelta(days=1),
    )
    return issuer.issue_access_token(
        user_id=str(user_id),
        token_version=0,
        session_id=session_id,
        now=datetime.now(UTC),
    )


def deepest_page(fixture: seed.Fixture, wanted: int) -> int:
    """`wanted` pages deep, or as deep as the owner's tasks go (keeping a full page after)."""
    return max(1, min(wanted, fixture.owner_tasks // LIMIT - 1))


def cursor_after(fixture: seed.Fixture, secret: str, pages: int) -> str:
    """The cursor that starts page `pages + 1` of the owner's default listing."""
    created_at, task_id = seed.position_of(
        fixture.url, owner_id=fixture.owner_id, offset=pages * LIMIT - 1
    )
    return encode_cursor(secret, created_at, task_id, owner_id=fixture.owner_id)


def cursor_endpoint(fixture: seed.Fixture, secret: str, pages: int, token: str) -> Endpoint:
    cursor = cursor_after(fixture, secret, pages)
    return Endpoint(
        name="list_cursor_deep",
        label=f"list by cursor, {pages} pages deep",
        call=Call(method="GET", path=f"/v1/tasks?limit={LIMIT}&cursor={cursor}", token=token),
    )


def page_endpoint(pages: int, token: str) -> Endpoint:
    return Endpoint(
        name="list_page_deep",
        label=f"list page {pages + 1}",
        call=Call(method="GET", path=f"/v1/tasks?limit={LIMIT}&page={pages + 1}", token=token),
    )


def endpoints(fixture: seed.Fixture, secret: str, *, depth: int) -> list[Endpoint]:
    owner = access_token(secret, fixture.owner_id)
    writer = access_token(secret, fixture.writer_id)
    pages = deepest_page(fixture, depth)
    credentials = json.dumps({"email": seed.OWNER_EMAIL, "password": seed.PASSWORD})
    return [
        Endpoint(
            name="get_task",
            label="get one task",
            call=Call(method="GET", path=f"/v1/tasks/{fixture.sample_task_id}", token=owner),
        ),
        Endpoint(
            name="list_page_1",
            label="list page 1",
            call=Call(method="GET", path=f"/v1/tasks?limit={LIMIT}", token=owner),
        ),
        cursor_endpoint(fixture, secret, pages, owner),
        page_endpoint(pages, owner),
        Endpoint(
            name="create_task",
            label="create a task",
            call=Call(method="POST", path="/v1/tasks", body=TASK_BODY, token=writer),
            status=201,
        ),
        Endpoint(
            name="login",
            label="log in (argon2)",
            call=Call(method="POST", path="/v1/auth/token", body=credentials),
            argon2=True,
        ),
    ]


def probe(endpoint: Endpoint) -> tuple[str, dict[str, str]]:
    """A cheap request that says a service is up (and its database reachable)."""
    token = endpoint.call.token or ""
    return endpoint.call.path, {"Authorization": f"Bearer {token}"}


# --- Checks before loading: every service gives the same answer -------------------------

_HEADERS = ("etag", "link", "location", "content-type")


def fetch(base_url: str, call: Call) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {call.token}"} if call.token else {}
    if call.body is not None:
        headers["Content-Type"] = "application/json"
    data = call.body.encode() if call.body is not None else None
    request = urllib.request.Request(
        base_url + call.path, data=data, headers=headers, method=call.method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, got = error.code, error.read(), error.headers
    present = {name: got.get(name, "").split(";")[0] for name in _HEADERS if got.get(name)}
    return status, present, json.loads(raw) if raw else None


def shape(value: Any) -> Any:
    """The JSON shape of a value: keys and types, not contents."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def check(servers: Mapping[str, Server], chosen: Sequence[Endpoint]) -> None:
    """Each endpoint answers with its expected status, and every service with the same JSON
    shape and the same headers (ETag, Link, Location, content type). Stops the run if not."""
    for endpoint in chosen:
        answers = {name: fetch(s.base_url, endpoint.call) for name, s in servers.items()}
        for name, (status, _, body) in answers.items():
            if status != endpoint.status:
                raise SystemExit(f"{name} {endpoint.name}: {status}, not {endpoint.status}: {body}")
        shapes = {name: (sorted(hdrs), shape(body)) for name, (_, hdrs, body) in answers.items()}
        reference_name, reference = next(iter(shapes.items()))
        for name, got in shapes.items():
            if got != reference:
                raise SystemExit(
                    f"{endpoint.name}: {name} answers {got}, {reference_name} {reference}"
                )


# --- Interleaved rounds ---------------------------------------------------------------------

Results = dict[str, dict[str, list[Measurement]]]


def measure(
    servers: Mapping[str, Server],
    chosen: Sequence[Endpoint],
    load: Load,
    *,
    log: Callable[[str], None] = print,
) -> Results:
    """Per endpoint, a warm-up for each service, then `load.rounds` rounds in which every
    service runs once, the order rotating from round to round (A B C, B C A, C A B), so that
    drift in the machine's speed falls on all of them alike."""
    names = list(servers)
    results: Results = {}
    for endpoint in chosen:
        connections = load.login_connections if endpoint.argon2 else load.connections
        per_service: dict[str, list[Measurement]] = {name: [] for name in names}
        for name in names:
            if load.warmup > 0:
                run(servers[name], endpoint, load.warmup, connections, load.wrk_cpu)
        for round_number in range(load.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                got = run(servers[name], endpoint, load.seconds, connections, load.wrk_cpu)
                per_service[name].append(got)
                log(
                    f"  {endpoint.name:<17} round {round_number + 1} {name:<9} "
                    f"{got.rps:9.0f} req/s  p50 {got.p50_ms:7.2f} ms  p99 {got.p99_ms:7.2f} ms"
                    + (f"  ({got.errors} errors!)" if got.errors else "")
                )
        results[endpoint.name] = per_service
    return results


def run(
    server: Server, endpoint: Endpoint, seconds: float, connections: int, cpus: str | None
) -> Measurement:
    return wrk(server.base_url, endpoint.call, seconds=seconds, connections=connections, cpus=cpus)
