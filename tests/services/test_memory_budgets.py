"""The in-memory budget store: limits' semantics, and expiry whose cost per step is bounded."""

from __future__ import annotations

import threading

import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from taskapi.services import memory_budgets
from taskapi.services.memory_budgets import SWEEP_BATCH, SweptMemoryStorage
from tests.utils.clock import Clock


@pytest.fixture
def store(clock: Clock) -> SweptMemoryStorage:
    return SweptMemoryStorage()


def test_a_fixed_window_counts_until_its_end_then_starts_again(
    store: SweptMemoryStorage, clock: Clock
) -> None:
    limiter = FixedWindowRateLimiter(store)
    limit = parse("2/minute")

    answers = [limiter.hit(limit, "client") for _ in range(3)]
    reset_at, remaining = limiter.get_window_stats(limit, "client")
    clock.now += 61

    assert answers == [True, True, False]
    assert (remaining, reset_at) == (0, pytest.approx(clock.now - 1))
    assert limiter.hit(limit, "client")


def test_count_answers_the_count_and_the_end_of_its_window_then_a_new_window_after_it(
    store: SweptMemoryStorage, clock: Clock
) -> None:
    first = store.count("client", 60)
    second = store.count("client", 60)
    clock.now += 61
    renewed = store.count("client", 60)

    assert first == (1, pytest.approx(clock.now - 1))
    assert second == (2, first[1])
    assert renewed == (1, pytest.approx(clock.now + 60))
    assert store.incr("client", 60) == store.get("client") == 2  # limits' API counts alike


def test_a_moving_window_refuses_past_its_limit_and_frees_each_entry_as_it_ages(
    store: SweptMemoryStorage, clock: Clock
) -> None:
    limiter = MovingWindowRateLimiter(store)
    limit = parse("3/minute")

    first = limiter.hit(limit, "account")
    clock.now += 30
    later = [limiter.hit(limit, "account") for _ in range(3)]
    start, _ = store.get_moving_window(limit.key_for("account"), 3, 60)
    clock.now += 31  # the first entry has left the window, the other two have not

    assert (first, later) == (True, [True, True, False])
    assert start == pytest.approx(clock.now - 61)
    assert limiter.hit(limit, "account")
    assert not limiter.hit(limit, "account")


def test_a_moving_window_never_holds_more_entries_than_its_limit(
    store: SweptMemoryStorage, clock: Clock
) -> None:
    limiter = MovingWindowRateLimiter(store)
    limit = parse("5/second")
    for _ in range(1000):  # a client that keeps trying, each try a little later
        limiter.hit(limit, "client")
        clock.now += 0.05

    _, entries = store._windows[limit.key_for("client")]

    assert 0 < len(entries) <= 5


def test_a_sweep_step_looks_at_no_more_than_a_batch_and_a_cycle_drops_every_expired_budget(
    store: SweptMemoryStorage, clock: Clock
) -> None:
    fixed, moving = FixedWindowRateLimiter(store), MovingWindowRateLimiter(store)
    limit = parse("10/minute")
    clients = 2 * SWEEP_BATCH + 10
    for number in range(clients):
        fixed.hit(limit, f"client-{number}")
        moving.hit(limit, f"account-{number}")
    fixed.hit(parse("10/hour"), "still counted")
    clock.now += 61

    looked_at = [store.sweep_step() for _ in range(5)]

    assert max(looked_at) == SWEEP_BATCH
    assert store.keys() == 1
    assert fixed.get_window_stats(parse("10/hour"), "still counted").remaining == 9


def test_hits_start_one_sweeper_thread_for_the_store_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []
    start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    store = SweptMemoryStorage()
    limiter = FixedWindowRateLimiter(store)
    try:
        for number in range(1000):
            limiter.hit(parse("10/minute"), f"client-{number}")
    finally:
        store.close()

    assert started == ["budget-sweeper"]


def test_the_sweeper_ends_with_its_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_budgets, "SWEEP_INTERVAL", 0.01)
    store = SweptMemoryStorage()
    FixedWindowRateLimiter(store).hit(parse("10/minute"), "client")
    sweeper = store._sweeper
    assert sweeper is not None

    store.close()
    sweeper.join(timeout=5)

    assert not sweeper.is_alive()


def test_threads_racing_on_one_budget_never_spend_past_its_limit(
    store: SweptMemoryStorage,
) -> None:
    fixed, moving = FixedWindowRateLimiter(store), MovingWindowRateLimiter(store)
    limit = parse("100/minute")
    granted: list[bool] = []
    start = threading.Barrier(8)

    def spend() -> None:
        start.wait()
        answers = [f(limit, "shared") for _ in range(250) for f in (fixed.hit, moving.hit)]
        granted.extend(answers)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sum(granted) == 200  # 100 of the fixed window's, 100 of the moving window's
    assert len(granted) == 8 * 500
