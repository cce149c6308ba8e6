"""The id of the request being served, readable from any layer: the logs (`logging_conf`) and
the web edge (`web.edge` begins and ends it, `web.problems` quotes it) both use it,
so it sits beside them rather than inside either."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else a client sends is replaced, so ids are safe to echo into headers and logs.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def begin_request(candidate: str | None) -> tuple[str, Token[str | None]]:
    """Adopt the client's id when well-formed, else a new one; returns it and a reset token."""
    request_id = (
        candidate if candidate is not None and _WELL_FORMED_ID.fullmatch(candidate) else _new_id()
    )
    return request_id, _request_id.set(request_id)


def _new_id() -> str:
    """128 random bits in hex, as `uuid4().hex` gives, without building a UUID and reading the
    OS's random source on every request (README, "What makes taskapi fast"). Request ids tie
    log lines together and guard nothing, so a non-cryptographic generator serves."""
    return f"{random.getrandbits(128):032x}"


def end_request(token: Token[str | None]) -> None:
    _request_id.reset(token)
