"""Idempotency-Key on creating requests: the first response is remembered and replayed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.services import idempotency
from taskapi.web.responses import json_reply

# The response headers a replay must repeat; the rest (request id, rate limits) are per request.
_REPLAYED_HEADERS = ("location", "etag")


def idempotent_reply(
    *,
    session: Session,
    owner_id: uuid.UUID,
    operation: str,
    key: str | None,
    request_body: Any,
    respond: Callable[[], Response],
) -> Response:
    """`respond()`, unless this key was seen: then the response it got the first time."""
    if key is None:
        return respond()
    claimed = idempotency.claim(
        session=session,
        owner_id=owner_id,
        operation=operation,
        key=key,
        request_fingerprint=idempotency.fingerprint(request_body),
    )
    if isinstance(claimed, idempotency.StoredResponse):
        return json_reply(claimed.body, status=claimed.status, headers=claimed.headers)
    response = respond()
    headers = {k: v for k, v in response.headers.items() if k in _REPLAYED_HEADERS}
    idempotency.remember(
        session=session,
        record=claimed,
        status=response.status_code,
        headers=headers,
        body=orjson.loads(response.body),
    )
    return response
