"""A request's objects are freed by reference counting as soon as it is answered: none is left
for the cyclic garbage collector, whose pauses stall every request in flight."""

from __future__ import annotations

import gc
from typing import Any

from connexion.lifecycle import ConnexionRequest
from starlette.requests import Request
from starlette.testclient import TestClient


def test_an_answered_request_leaves_no_reference_cycle(
    client: TestClient, user_and_headers: tuple[dict[str, Any], dict[str, str]]
) -> None:
    _, headers = user_and_headers
    # A listing with query parameters: validated, coerced and handed to the handler.
    url = "/v1/tasks?limit=5&sort=-created_at"
    assert client.get(url, headers=headers).status_code == 200  # warm-up: lazy caches fill
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            assert client.get(url, headers=headers).status_code == 200
        gc.collect()
        requests_in_cycles = [o for o in gc.garbage if isinstance(o, ConnexionRequest | Request)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()

    assert requests_in_cycles == []
