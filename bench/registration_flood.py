"""Does a registration flood slow another user's writes? `python -m bench.registration_flood`.

Serves taskapi (one worker, SQLite by default or `--postgres URL`, argon2 at its production
cost), with its default registration limit per address or, with `--lift-limit`, none (as a
flood from many addresses would see it). One user creates tasks one after another, first
alone, then while `--flooders` threads register new accounts from one address as fast as they
can; prints the task creates' median and 90th percentile, in ms, for both, and how many
registrations the flood got through per second.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench import serve
from taskapi.settings import Settings

PASSWORD = "correct horse battery staple"


@contextmanager
def serving(database_url: str, folder: Path, *, lift_limit: bool) -> Iterator[str]:
    """taskapi as deployed (`taskapi serve`, one worker), its other limits out of reach
    (TASKAPI_ENV), hashing at the production cost."""
    limit = (
        serve.TASKAPI_ENV["RATE_LIMIT"]
        if lift_limit
        else Settings().registration_rate_limit_per_client
    )
    env = {
        "REGISTRATION_RATE_LIMIT_PER_CLIENT": limit,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(folder),
        "JWT_SECRET": "bench-signing-secret-that-is-long-enough",
        "PASSWORD_HASH_PROFILE": "RFC_9106_LOW_MEMORY",
    }
    server = serve.start(
        "taskapi",
        env=env,
        workers=1,
        cpus=None,
        log_dir=folder,
        probe_path="/v1/readyz",
        probe_headers={},
        as_deployed=True,
    )
    try:
        yield f"{server.base_url}/v1"
    finally:
        server.stop()


def _creates_ms(
    client: httpx.Client, base: str, headers: dict[str, str], count: int
) -> list[float]:
    times = []
    for n in range(count):
        started = time.perf_counter()
        response = client.post(f"{base}/tasks", json={"title": f"task {n}"}, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


@contextmanager
def _flooding(flooders: int, send: Callable[[httpx.Client], int]) -> Iterator[list[int]]:
    """While inside: `flooders` threads calling `send` in a loop; yields the statuses seen."""
    stop, statuses = threading.Event(), list[int]()

    def flood() -> None:
        with httpx.Client(timeout=60) as flooder:
            while not stop.is_set():
                statuses.append(send(flooder))

    threads = [threading.Thread(target=flood) for _ in range(flooders)]
    for thread in threads:
        thread.start()
    time.sleep(1)  # the flood is under way
    try:
        yield statuses
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def measure(base: str, *, creates: int, flooders: int) -> dict[str, float]:
    emails = (f"flood{n}-{time.time_ns()}@example.com" for n in itertools.count())
    lock = threading.Lock()

    def register(flooder: httpx.Client) -> int:
        with lock:
            email = next(emails)
        account = {"email": email, "name": "Flood", "age": 30, "password": PASSWORD}
        return flooder.post(f"{base}/users", json=account).status_code

    def probe(flooder: httpx.Client) -> int:
        return flooder.get(f"{base}/healthz").status_code

    with httpx.Client(timeout=60) as client:
        body = {"email": "writer@example.com", "name": "Writer", "age": 30, "password": PASSWORD}
        client.post(f"{base}/users", json=body).raise_for_status()
        login = {"email": body["email"], "password": PASSWORD}
        token = client.post(f"{base}/auth/token", json=login).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        _creates_ms(client, base, headers, 5)  # warm up
        figures = {"alone": _creates_ms(client, base, headers, creates)}
        with _flooding(flooders, probe):
            figures["beside a flood of GET /healthz"] = _creates_ms(client, base, headers, creates)
        with _flooding(flooders, register) as statuses:
            started = time.perf_counter()
            figures["beside a registration flood"] = _creates_ms(client, base, headers, creates)
            seconds = time.perf_counter() - started
    print(
        f"registrations: {statuses.count(201)} created, {statuses.count(429)} refused (429)"
        f" in {seconds + 1:.1f} s"
    )
    return {
        f"{name} p{q}": statistics.quantiles(times, n=100)[q - 1]
        for name, times in figures.items()
        for q in (50, 90)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=60)
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--postgres", help="a PostgreSQL database URL instead of SQLite")
    parser.add_argument(
        "--lift-limit", action="store_true", help="no registration limit (a distributed flood)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.postgres or f"sqlite:///{Path(folder) / 'flood.sqlite3'}"
        with serving(url, Path(folder), lift_limit=args.lift_limit) as base:
            figures = measure(base, creates=args.creates, flooders=args.flooders)
    print(f"{'task creates by another user, ms':<46}{'':>8}")
    for name, value in figures.items():
        print(f"{name:<46}{value:>8.1f}")


if __name__ == "__main__":
    main()
