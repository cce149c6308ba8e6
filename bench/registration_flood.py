"""Does a registration flood slow another user's writes? `python -m bench.registration_flood`.

Serves taskapi (one worker, SQLite by default or `--postgres URL`, argon2 at its production
cost) with the registration limit lifted, so that the flood reaches the hashing. One user
creates tasks one after another, first alone, then while `--flooders` threads register new
accounts as fast as they can; prints the task creates' median and 90th percentile, in ms, for
both, and how many registrations the flood got through.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench import serve

PASSWORD = "correct horse battery staple"


@contextmanager
def serving(database_url: str, folder: Path) -> Iterator[str]:
    """taskapi as deployed (`taskapi serve`, one worker), its limits out of reach (TASKAPI_ENV),
    hashing at the production cost."""
    env = {
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


def measure(base: str, *, creates: int, flooders: int) -> dict[str, float]:
    emails = (f"flood{n}-{time.time_ns()}@example.com" for n in itertools.count())
    lock = threading.Lock()
    with httpx.Client(timeout=60) as client:
        body = {"email": "writer@example.com", "name": "Writer", "age": 30, "password": PASSWORD}
        client.post(f"{base}/users", json=body).raise_for_status()
        login = {"email": body["email"], "password": PASSWORD}
        token = client.post(f"{base}/auth/token", json=login).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        _creates_ms(client, base, headers, 5)  # warm up
        alone = _creates_ms(client, base, headers, creates)

        stop, registered = threading.Event(), [0]

        def flood() -> None:
            with httpx.Client(timeout=60) as flooder:
                while not stop.is_set():
                    with lock:
                        email = next(emails)
                    account = {"email": email, "name": "Flood", "age": 30, "password": PASSWORD}
                    if flooder.post(f"{base}/users", json=account).status_code == 201:  # noqa: PLR2004
                        registered[0] += 1

        threads = [threading.Thread(target=flood) for _ in range(flooders)]
        for thread in threads:
            thread.start()
        time.sleep(1)  # the flood is under way
        started = time.perf_counter()
        flooded = _creates_ms(client, base, headers, creates)
        seconds = time.perf_counter() - started
        stop.set()
        for thread in threads:
            thread.join()
    return {
        "alone p50": statistics.median(alone),
        "alone p90": statistics.quantiles(alone, n=10)[-1],
        "flooded p50": statistics.median(flooded),
        "flooded p90": statistics.quantiles(flooded, n=10)[-1],
        "registrations/s": registered[0] / (seconds + 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--creates", type=int, default=60)
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--postgres", help="a PostgreSQL database URL instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.postgres or f"sqlite:///{Path(folder) / 'flood.sqlite3'}"
        with serving(url, Path(folder)) as base:
            figures = measure(base, creates=args.creates, flooders=args.flooders)
    for name, value in figures.items():
        print(f"{name:<18}{value:>10.1f}")


if __name__ == "__main__":
    main()
