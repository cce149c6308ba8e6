"""Soak: mixed traffic on the service as deployed, watching for anything that grows.

    python -m tools.live_service --workers 2 --postgres "$TEST_DATABASE_URL" -- \
        python -m bench.soak --minutes 60

Run under `tools.live_service`, which starts `taskapi serve` on a scratch database and passes
its URL, admin credentials and process id. Concurrent clients register, log in and then create,
read, list (by page and by cursor), edit and delete tasks, with some bad requests mixed in. Every
`--every` seconds it samples throughput, p99 latency, errors (5xx and transport failures), and,
for the server's processes, open file descriptors and resident memory, plus the database's
connections. It prints a table and writes bench/results/soak.json; it exits non-zero on any 5xx
or when descriptors or memory grew by more than the allowed margin over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

RESULTS = Path(__file__).resolve().parent / "results"
# Growth allowed between the first sample after warm-up and the last one.
ALLOWED_GROWTH = 0.10
# Sockets come and go with keep-alive and the pool: a few descriptors either way is not a leak.
FD_SLACK = 16
# Samples taken while caches, pools and allocators settle, left out of the growth check.
WARM_UP_SAMPLES = 1


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    requests: int = 0


@dataclass
class Sample:
    elapsed_s: float
    requests_per_s: float
    p99_ms: float
    errors: int
    open_fds: int
    rss_mib: float
    db_connections: int


def server_processes(pid: int) -> list[int]:
    """The server process and all its descendants (uvicorn's workers)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (
                (task / "children").read_text().split() if (task / "children").exists() else []
            )
            queue.extend(int(child) for child in children)
    return found


def process_usage(pids: list[int]) -> tuple[int, float]:
    fds, rss_kib = 0, 0
    for pid in pids:
        try:
            fds += len(os.listdir(f"/proc/{pid}/fd"))
            status = Path(f"/proc/{pid}/status").read_text()
            rss_kib += int(
                next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
            )
        except (FileNotFoundError, ProcessLookupError):
            continue
    return fds, rss_kib / 1024


def database_connections(database_url: str) -> int:
    if not database_url.startswith("postgresql"):
        return 0
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


class Client:
    """One simulated user doing a realistic mix of things."""

    def __init__(self, http: httpx.AsyncClient, window: dict[str, Window]) -> None:
        self.http = http
        self.window = window
        self.headers: dict[str, str] = {}
        self.tasks: list[str] = []

    async def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        current = self.window["now"]
        current.requests += 1
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError:
            current.errors += 1
            return None
        current.latencies.append(time.perf_counter() - started)
        if response.is_server_error:
            current.errors += 1
        return response

    async def sign_up(self) -> None:
        email = f"soak-{uuid.uuid4().hex}@example.com"
        password = "a soak test passphrase"
        account = {"email": email, "name": "Soak", "age": 30, "password": password}
        await self.call("POST", "/users", json=account)
        token = await self.call("POST", "/auth/token", json={"email": email, "password": password})
        if token is not None and token.status_code == HTTPStatus.OK:
            self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def step(self) -> None:
        if not self.tasks:
            await self.create()
            return
        # A realistic mix, reads first, with some refusals that must stay 4xx.
        action = random.choices(
            [
                self.create,
                self.read,
                self.list_page,
                self.list_cursor,
                self.edit,
                self.delete,
                self.malformed,
                self.forged,
            ],
            weights=[25, 25, 15, 10, 10, 5, 5, 5],
        )[0]
        await action()

    async def create(self) -> None:
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        body = {"title": "Soak task", "tags": ["soak"], "priority": "high"}
        created = await self.call("POST", "/tasks", headers=headers, json=body)
        if created is not None and created.status_code == HTTPStatus.CREATED:
            self.tasks.append(created.json()["id"])

    async def read(self) -> None:
        await self.call("GET", f"/tasks/{random.choice(self.tasks)}", headers=self.headers)

    async def list_page(self) -> None:
        await self.call("GET", "/tasks?limit=20&sort=-created_at", headers=self.headers)

    async def list_cursor(self) -> None:
        await self.call("GET", "/tasks?limit=20&cursor=&status=todo", headers=self.headers)

    async def edit(self) -> None:
        headers = {**self.headers, "content-type": "application/merge-patch+json"}
        task = random.choice(self.tasks)
        await self.call("PATCH", f"/tasks/{task}", headers=headers, content=b'{"status": "done"}')

    async def delete(self) -> None:
        await self.call("DELETE", f"/tasks/{self.tasks.pop(0)}", headers=self.headers)

    async def malformed(self) -> None:
        await self.call("POST", "/tasks", headers=self.headers, content=b'{"title": ')

    async def forged(self) -> None:
        await self.call("GET", "/users/me", headers={"Authorization": "Bearer forged"})


async def soak(args: argparse.Namespace) -> list[Sample]:
    base_url = os.environ["TASKAPI_URL"]
    server_pid = int(os.environ["TASKAPI_PID"])
    database_url = os.environ["DATABASE_URL"]
    window = {"now": Window()}
    samples: list[Sample] = []
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
        clients = [Client(http, window) for _ in range(args.clients)]
        await asyncio.gather(*(c.sign_up() for c in clients))
        started = time.monotonic()
        deadline = started + args.minutes * 60

        async def run(client: Client) -> None:
            while time.monotonic() < deadline:
                await client.step()

        async def sample() -> None:
            while time.monotonic() < deadline:
                await asyncio.sleep(args.every)
                done, window["now"] = window["now"], Window()
                fds, rss = process_usage(server_processes(server_pid))
                connections = await asyncio.to_thread(database_connections, database_url)
                p99 = (
                    statistics.quantiles(done.latencies, n=100)[98] * 1000
                    if len(done.latencies) > 1
                    else 0.0
                )
                samples.append(
                    Sample(
                        elapsed_s=round(time.monotonic() - started, 1),
                        requests_per_s=round(done.requests / args.every, 1),
                        p99_ms=round(p99, 2),
                        errors=done.errors,
                        open_fds=fds,
                        rss_mib=round(rss, 1),
                        db_connections=connections,
                    )
                )
                print(" ".join(f"{k}={v}" for k, v in asdict(samples[-1]).items()), flush=True)

        await asyncio.gather(sample(), *(run(c) for c in clients))
    return samples


def verdict(samples: list[Sample]) -> list[str]:
    """What went wrong, if anything: errors, or growth after the first (warm-up) sample."""
    problems = []
    if any(s.errors for s in samples):
        problems.append(f"{sum(s.errors for s in samples)} errors (5xx or transport)")
    steady = samples[WARM_UP_SAMPLES:] if len(samples) > WARM_UP_SAMPLES + 1 else samples
    for name, slack in (("open_fds", FD_SLACK), ("rss_mib", 0.0)):
        first, last = getattr(steady[0], name), getattr(steady[-1], name)
        if last - first > max(first * ALLOWED_GROWTH, slack):
            problems.append(f"{name} grew from {first} to {last}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    samples = asyncio.run(soak(args))
    problems = verdict(samples)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(
        json.dumps(
            {
                "minutes": args.minutes,
                "clients": args.clients,
                "samples": [asdict(s) for s in samples],
                "problems": problems,
            },
            indent=2,
        )
    )
    print("soak:", "; ".join(problems) if problems else "no errors, no growth")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
