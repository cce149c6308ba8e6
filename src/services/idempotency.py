"""Idempotency keys: the first response to a request is remembered, and a retry with the same
key (within 24 hours) gets that response again instead of acting twice."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapi.errors import IdempotencyKeyReusedError
from taskapi.models import IdempotentRequest
from taskapi.models.base import utc_now

WINDOW = timedelta(hours=24)


@dataclass(frozen=True, kw_only=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: Any


def fingerprint(body: Any) -> str:
    """The same for requests whose JSON bodies are equal, whatever their key order or spacing."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def claim(
    *, session: Session, owner_id: uuid.UUID, operation: str, key: str, request_fingerprint: str
) -> IdempotentRequest | StoredResponse:
    """Either the response remembered for this key (to replay), or a fresh claim on the key
    (to `remember` the response in, in the same transaction as the work it answers).

    Concurrent requests with one key are serialised by the unique constraint: the second waits
    for the first to commit, then replays its response. Raises IdempotencyKeyReusedError when
    the key was used within the window for a request with another body.
    """
    stored = _find(session=session, owner_id=owner_id, operation=operation, key=key)
    if stored is None:
        record = IdempotentRequest(
            owner_id=owner_id,
            operation=operation,
            key=key,
            fingerprint=request_fingerprint,
            status=0,
            headers={},
            body=None,
        )
        try:
            with session.begin_nested():
                session.add(record)
            return record
        except IntegrityError:  # another request with this key committed first
            stored = _find(session=session, owner_id=owner_id, operation=operation, key=key)
            if stored is None:  # pragma: no cover - it committed, so it is there to read
                raise
    if stored.fingerprint != request_fingerprint:
        raise IdempotencyKeyReusedError("This Idempotency-Key was used with a different request.")
    return StoredResponse(status=stored.status, headers=dict(stored.headers), body=stored.body)


def remember(
    *, session: Session, record: IdempotentRequest, status: int, headers: dict[str, str], body: Any
) -> None:
    record.status, record.headers, record.body = status, headers, body
    session.flush()


def _find(
    *, session: Session, owner_id: uuid.UUID, operation: str, key: str
) -> IdempotentRequest | None:
    identity = (
        IdempotentRequest.owner_id == owner_id,
        IdempotentRequest.operation == operation,
        IdempotentRequest.key == key,
    )
    # An expired key is forgotten, so the client may use it again.
    session.execute(
        delete(IdempotentRequest).where(
            *identity, IdempotentRequest.created_at < utc_now() - WINDOW
        )
    )
    return session.scalar(select(IdempotentRequest).where(*identity))
