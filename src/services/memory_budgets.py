"""Rate-limit budgets kept in this process's memory (no REDIS_URL), expired in bounded steps.

limits' own MemoryStorage expires budgets from a thread it starts 10 ms after any hit that
finds none running, and that thread walks every key it holds. With a hundred thousand clients
counted in a window, each walk holds the interpreter for tens of milliseconds, and under
traffic it starts again 10 ms after it ends: the event loop is left a fraction of the
interpreter, and each of those thread starts blocks it until the new thread runs.

Here a budget found expired when it is read is dropped there, a moving window is trimmed each
time it is used (so it never holds more than its limit), and one thread per store looks at
no more than SWEEP_BATCH keys every SWEEP_INTERVAL seconds for the budgets nobody reads again.
Memory thus holds the keys counted within their windows, plus those of one sweep cycle.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
import weakref
from collections.abc import Iterator

from limits.storage.base import MovingWindowSupport, Storage

# The sweeper's pace: each step holds the store's lock for at most SWEEP_BATCH keys.
SWEEP_BATCH = 2000
SWEEP_INTERVAL = 0.5


class SweptMemoryStorage(Storage, MovingWindowSupport):
    """A limits storage for fixed windows (counters) and moving windows, in memory.

    Times are wall-clock seconds (time.time), as limits reports resets.
    Every method takes one lock: the event loop spends the general limit while handler
    threads spend credential limits.
    """

    # limits registers every storage class under a URI scheme; this one is only built here.
    STORAGE_SCHEME = ["taskapi-memory"]  # noqa: RUF012 - the base class declares it so

    def __init__(self, **options: bool) -> None:
        super().__init__(None, **options)
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._expirations: dict[str, float] = {}
        # Per key: the window's length and its entries' times, newest first.
        self._windows: dict[str, tuple[int, list[float]]] = {}
        self._unswept: Iterator[str] = iter(())
        self._stopped = threading.Event()
        self._sweeper: threading.Thread | None = None

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ()

    # --- fixed windows ------------------------------------------------------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.count(key, expiry, amount)[0]

    def count(self, key: str, expiry: int, amount: int = 1) -> tuple[int, float]:
        """`incr`, answering with the count the moment its window ends, read under the same
        lock (the general limit's `Throttle.spend` needs both, on every request)."""
        now = time.time()
        with self._lock:
            self._start_sweeping()
            ends = self._expirations.get(key, 0)
            if ends <= now:
                ends = self._expirations[key] = now + expiry
                counted = self._counters[key] = amount
            else:
                counted = self._counters[key] = self._counters[key] + amount
            return counted, ends

    def get(self, key: str) -> int:
        with self._lock:
            if self._expirations.get(key, 0) <= time.time():
                self._drop_counter(key)
            return self._counters.get(key, 0)

    def get_expiry(self, key: str) -> float:
        with self._lock:
            return self._expirations.get(key, time.time())

    # --- moving windows -----------------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        with self._lock:
            self._start_sweeping()
            _, entries = self._windows.setdefault(key, (expiry, []))
            _trim(entries, now - expiry)
            if len(entries) + amount > limit:
                return False
            entries[:0] = [now] * amount
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._lock:
            _, entries = self._windows.get(key, (expiry, []))
            within = _count_after(entries, now - expiry)
            return (entries[within - 1], within) if within else (now, 0)

    # --- the rest of limits' Storage ----------------------------------------------------

    def check(self) -> bool:
        return True

    def clear(self, key: str) -> None:
        with self._lock:
            self._drop_counter(key)
            self._windows.pop(key, None)

    def reset(self) -> int | None:
        with self._lock:
            count = len(self._counters) + len(self._windows)
            self._counters.clear()
            self._expirations.clear()
            self._windows.clear()
            return count

    def keys(self) -> int:
        """How many budgets the store holds now."""
        with self._lock:
            return len(self._counters) + len(self._windows)

    # --- expiry -------------------------------------------------------------------------

    def sweep_step(self) -> int:
        """Drop what has expired among the next SWEEP_BATCH keys of the current sweep (a
        new sweep starts from a snapshot of the keys once the last is done); how many keys
        were looked at."""
        now = time.time()
        with self._lock:
            batch = list(itertools.islice(self._unswept, SWEEP_BATCH))
            if not batch:
                self._unswept = iter([*self._expirations, *self._windows])
                batch = list(itertools.islice(self._unswept, SWEEP_BATCH))
            for key in batch:
                if self._expirations.get(key, now) < now:
                    self._drop_counter(key)
                window = self._windows.get(key)
                if window is not None:
                    expiry, entries = window
                    _trim(entries, now - expiry)
                    if not entries:
                        del self._windows[key]
            return len(batch)

    def close(self) -> None:
        """Stop the sweeper (the store keeps answering, and expires what it reads)."""
        self._stopped.set()

    def _start_sweeping(self) -> None:
        if self._sweeper is None and not self._stopped.is_set():
            self._sweeper = threading.Thread(
                target=_sweep,
                args=(weakref.ref(self), self._stopped),
                daemon=True,
                name="budget-sweeper",
            )
            self._sweeper.start()

    def _drop_counter(self, key: str) -> None:
        self._counters.pop(key, None)
        self._expirations.pop(key, None)


def _sweep(store: weakref.ref[SweptMemoryStorage], stopped: threading.Event) -> None:
    """The sweeper's loop: it holds the store only for a step, and ends with the store."""
    while not stopped.wait(SWEEP_INTERVAL):
        alive = store()
        if alive is None:
            return
        alive.sweep_step()
        del alive


def _count_after(entries: list[float], cutoff: float) -> int:
    """How many of `entries` (newest first) are later than `cutoff`."""
    return bisect.bisect_left(entries, -cutoff, key=lambda moment: -moment)


def _trim(entries: list[float], cutoff: float) -> None:
    """Drop the entries (newest first) at or before `cutoff`."""
    del entries[_count_after(entries, cutoff) :]
