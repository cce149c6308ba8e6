"""`python -m bench worst`: each operation's costliest request, at the size the spec allows
and just past it, with the latency of `/v1/healthz` sent to the same worker meanwhile.

One taskapi worker on a fresh SQLite database; no wrk. Each request is sent `--rounds` times
(once only when it takes longer than a second); the table shows the median service time and
the slowest health check seen while it was in flight.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench import serve

CLIENT_TIMEOUT = 120.0  # seconds: a stalled worker is reported, not waited for forever
SLOW = 1.0  # seconds: a request this slow is not repeated
HEALTH_DELAY = 0.02  # seconds after the worst request is sent
PASSWORD = "correct horse battery staple"
# Past the spec's limits, but inside MAX_BODY_BYTES: what an attacker can send in one request.
OVER_STRING = 60_000
OVER_ITEMS = 5_000
UNKNOWN_KEYS_BYTES = 175_000
MAX_BODY_BYTES = 1024 * 1024  # the default
NEAR_MAX_BODY = 1_000_000
PATCH: dict[str, Any] = {"media_type": "application/merge-patch+json"}


@dataclass(frozen=True)
class Worst:
    """One costly request: `body` (JSON) or `query` built for one size of its input."""

    operation: str
    method: str
    path: str
    what: str
    size: int
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    media_type: str = "application/json"

    def headers(self, bearer: dict[str, str]) -> dict[str, str]:
        return bearer | ({"Content-Type": self.media_type} if self.content() else {})

    def content(self) -> bytes | None:
        if self.raw is not None:
            return self.raw
        return None if self.body is None else orjson.dumps(self.body)


def _user(**fields: Any) -> dict[str, Any]:
    return {"email": "x@example.com", "name": "Ada", "age": 30, "password": PASSWORD} | fields


def _unknown_keys(total: int) -> bytes:
    keys = []
    size, n = 2, 0
    while size < total:
        keys.append(f'"k{n:06d}":0')
        size += len(keys[-1]) + 1
        n += 1
    return ("{" + ",".join(keys) + "}").encode()


def requests_for(task_path: str) -> list[Worst]:
    """Every row of the table: a control character at the very end is the worst case of the
    patterns that forbid control characters (everything before it must be matched first)."""
    rows: list[Worst] = []
    for size in (100, OVER_STRING):
        name = "a" * (size - 1) + "\x01"
        rows += [
            Worst("create_user", "POST", "/v1/users", "name", size, _user(name=name)),
            Worst("update_me", "PATCH", "/v1/users/me", "name", size, {"name": name}, **PATCH),
        ]
    for size in (254, OVER_STRING):
        email = "a@" + "." * (size - 3) + "\x01"
        rows.append(Worst("create_user", "POST", "/v1/users", "email", size, _user(email=email)))
    for size in (200, OVER_STRING):
        title = "a" * (size - 1) + "\x01"
        rows += [
            Worst("create_task", "POST", "/v1/tasks", "title", size, {"title": title}),
            Worst("update_task", "PATCH", task_path, "title", size, {"title": title}, **PATCH),
        ]
    for size in (10, OVER_ITEMS):
        body = {"title": "t", "tags": [{"tag": n} for n in range(size)]}
        rows.append(Worst("create_task", "POST", "/v1/tasks", "tags (objects)", size, body))
    for size in (10_000, OVER_STRING):
        description = "a" * (size - 1) + "\x00"
        body = {"title": "t", "description": description}
        rows.append(Worst("create_task", "POST", "/v1/tasks", "description", size, body))
    for size in (2048, OVER_STRING):
        query = {"cursor": "a" * (size - 1) + "!"}
        rows.append(Worst("list_tasks", "GET", "/v1/tasks", "cursor", size, query=query))
    for size in (254, OVER_STRING):
        email = "a" * (size - 1) + "\x01"
        body = {"email": email, "password": PASSWORD}
        rows.append(Worst("log_in", "POST", "/v1/auth/token", "email", size, body))
    for size in (256, OVER_STRING):
        body = {"refresh_token": "a" * (size - 1) + "\x01"}
        rows.append(Worst("refresh", "POST", "/v1/auth/refresh", "refresh_token", size, body))
    # Bodies as large as MAX_BODY_BYTES allows, and just past it (413, unread).
    for what, size in (("unknown keys", UNKNOWN_KEYS_BYTES), ("unknown keys", NEAR_MAX_BODY)):
        rows.append(Worst("create_user", "POST", "/v1/users", what, size, raw=_unknown_keys(size)))
    many_tags = {"title": "t", "tags": [{"tag": n} for n in range(NEAR_MAX_BODY // 15)]}
    rows.append(
        Worst(
            "create_task", "POST", "/v1/tasks", "tags (objects)", len(many_tags["tags"]), many_tags
        )
    )
    past = _unknown_keys(MAX_BODY_BYTES + 1024)
    rows.append(
        Worst("create_user", "POST", "/v1/users", "past MAX_BODY_BYTES", len(past), raw=past)
    )
    return rows


@dataclass
class Measured:
    status: int
    seconds: list[float]
    health_seconds: list[float]


def _timed(call: Callable[[], httpx.Response]) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        status = call().status_code
    except httpx.TimeoutException:
        status = 0
    return status, time.perf_counter() - started


def measure(client: httpx.Client, headers: dict[str, str], worst: Worst, rounds: int) -> Measured:
    measured = Measured(0, [], [])

    def send() -> tuple[int, float]:
        return _timed(
            lambda: client.request(
                worst.method,
                worst.path,
                params=worst.query,
                content=worst.content(),
                headers=headers,
            )
        )

    with (
        ThreadPoolExecutor(1) as sender,
        httpx.Client(base_url=str(client.base_url), timeout=CLIENT_TIMEOUT) as probe,
    ):
        for _ in range(rounds):
            answer = sender.submit(send)
            time.sleep(HEALTH_DELAY)
            _, health = _timed(lambda: probe.get("/v1/healthz"))
            measured.status, seconds = answer.result()
            measured.seconds.append(seconds)
            measured.health_seconds.append(health)
            if seconds > SLOW:
                break
    return measured


def sign_up(client: httpx.Client) -> tuple[dict[str, str], str]:
    """A user's bearer headers and the path of one of their tasks."""
    client.post("/v1/users", json=_user(email="worst@example.com")).raise_for_status()
    token = client.post("/v1/auth/token", json={"email": "worst@example.com", "password": PASSWORD})
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    task = client.post("/v1/tasks", json={"title": "a task"}, headers=headers)
    task.raise_for_status()
    return headers, f"/v1/tasks/{task.json()['id']}"


@contextmanager
def _server(env: dict[str, str]) -> Iterator[serve.Server]:
    server = serve.start(
        "taskapi",
        env=env,
        workers=1,
        cpus=None,
        log_dir=serve.ROOT / "var" / "bench" / "logs",
        probe_path="/v1/healthz",
        probe_headers={},
    )
    try:
        yield server
    finally:
        server.stop()


def run(env: dict[str, str], rounds: int) -> list[dict[str, Any]]:
    """Measure every row against a fresh server; the figures, row by row."""
    figures: list[dict[str, Any]] = []
    with (
        _server(env) as server,
        httpx.Client(base_url=server.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        headers, task_path = sign_up(client)
        for worst in requests_for(task_path):
            got = measure(client, worst.headers(headers), worst, rounds)
            figures.append(
                {
                    "operation": worst.operation,
                    "input": worst.what,
                    "size": worst.size,
                    "bytes": len(worst.content() or b"") + len(str(worst.query)),
                    "status": got.status,
                    "service_ms": round(statistics.median(got.seconds) * 1000, 1),
                    "healthz_ms": round(max(got.health_seconds) * 1000, 1),
                }
            )
            print(_row(figures[-1]), flush=True)
    return figures


TABLE_HEADER = (
    "| operation | input | size | request bytes | status | service ms | healthz ms meanwhile |\n"
    "|---|---|---|---|---|---|---|"
)


def _row(figure: dict[str, Any]) -> str:
    status = figure["status"] or f"no answer in {CLIENT_TIMEOUT:.0f} s"
    return (
        f"| {figure['operation']} | {figure['input']} | {figure['size']} | {figure['bytes']} "
        f"| {status} | {figure['service_ms']} | {figure['healthz_ms']} |"
    )


def table(figures: list[dict[str, Any]]) -> str:
    return "\n".join([TABLE_HEADER, *(_row(f) for f in figures)])
