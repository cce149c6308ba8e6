"""What expiring in-memory rate-limit budgets costs the rest of the process.

`python -m bench.budget_sweep [--keys N] [--rounds R]` fills limits' MemoryStorage and taskapi's
SweptMemoryStorage each with N clients' counters, then times the same pure-Python work in the
main thread while a background thread hits one key every 5 ms (traffic, which keeps each
store's expiry going), beside each store and beside an empty one, in R interleaved rounds. It
prints the time of one expiry walk (or step) of each store, and the median time of the work
beside each against the empty store.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from limits import parse
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from taskapi.services.memory_budgets import SWEEP_BATCH, SWEEP_INTERVAL, SweptMemoryStorage

LIMIT = parse("100/minute")
WORK_ROUNDS = 5


def _work() -> float:
    """Seconds for a fixed amount of interpreter work."""
    started = time.perf_counter()
    total = 0
    for number in range(300_000):
        total += number
    return time.perf_counter() - started


def _median_work() -> float:
    return statistics.median(_work() for _ in range(WORK_ROUNDS))


@contextmanager
def _traffic(limiter: FixedWindowRateLimiter) -> Iterator[None]:
    stop = threading.Event()

    def hit() -> None:
        while not stop.wait(0.005):
            limiter.hit(LIMIT, "steady client")

    thread = threading.Thread(target=hit, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _fill(limiter: FixedWindowRateLimiter, keys: int) -> None:
    for number in range(keys):
        limiter.hit(LIMIT, f"client-{number}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    theirs, ours = MemoryStorage(), SweptMemoryStorage()
    stores: dict[str, Storage] = {
        "empty store": SweptMemoryStorage(),
        "SweptMemoryStorage": ours,
        "limits MemoryStorage": theirs,
    }
    limiters = {name: FixedWindowRateLimiter(store) for name, store in stores.items()}
    _fill(limiters["SweptMemoryStorage"], args.keys)
    _fill(limiters["limits MemoryStorage"], args.keys)

    started = time.perf_counter()
    theirs._MemoryStorage__expire_events()  # type: ignore[attr-defined]  # its walk, timed once
    walk = time.perf_counter() - started
    started = time.perf_counter()
    ours.sweep_step()
    step = time.perf_counter() - started
    print(
        f"{args.keys} clients counted. One expiry walk of every key by limits' MemoryStorage: "
        f"{walk * 1000:.1f} ms (10 ms after the last, under traffic); one step of "
        f"SweptMemoryStorage ({SWEEP_BATCH} keys): {step * 1000:.1f} ms (every {SWEEP_INTERVAL} s)"
    )
    # Rounds interleave the stores, so that the machine's drift falls on all three alike.
    times: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(args.rounds):
        for name, limiter in limiters.items():
            with _traffic(limiter):
                times[name].append(_median_work())
    baseline = statistics.median(times["empty store"])
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"work beside {name}: {median * 1000:.1f} ms ({median / baseline:.2f}x)")
    for store in (ours, stores["empty store"]):
        cast(SweptMemoryStorage, store).close()


if __name__ == "__main__":
    main()
