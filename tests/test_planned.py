"""taskapi.web.planned: synchronous handlers run on the app's own, bounded set of threads."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from taskapi.web.planned import PlannedAsyncApp

HANDLER_THREADS = 2
CONCURRENT_REQUESTS = 6
threads_seen: set[str] = set()

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "threads", "version": "1"},
    "paths": {
        "/thread": {
            "get": {
                "operationId": f"{__name__}.record_thread",
                "responses": {"200": {"description": "the handler's thread"}},
            }
        }
    },
}


def record_thread() -> dict[str, str]:
    """A handler that blocks, as one waiting on the database does."""
    threads_seen.add(threading.current_thread().name)
    time.sleep(0.05)
    return {"thread": threading.current_thread().name}


def test_synchronous_handlers_run_on_no_more_threads_than_the_app_was_given() -> None:
    app = PlannedAsyncApp(__name__, handler_threads=HANDLER_THREADS)
    app.add_api(SPEC)
    threads_seen.clear()

    answers = asyncio.run(_all_at_once(app, CONCURRENT_REQUESTS))

    assert [answer.status_code for answer in answers] == [200] * CONCURRENT_REQUESTS
    # All were in flight at once: an unbounded pool would have run them on as many threads.
    assert len(threads_seen) == HANDLER_THREADS
    assert all(name.startswith("handler") for name in threads_seen)


async def _all_at_once(app: PlannedAsyncApp, count: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return list(await asyncio.gather(*(client.get("/thread") for _ in range(count))))
