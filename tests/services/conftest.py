from __future__ import annotations

import time

import pytest

from tests.utils.clock import Clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`time.time()` as the test sets it (limits and the budget stores read it)."""
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    return clock
