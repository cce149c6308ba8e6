"""Idempotency keys: the first reply to a request is remembered, and a retry with the same key
(within 24 hours) gets that reply again instead of acting twice.

The reply is opaque data to these rules (the web layer gives it its shape); what they guarantee
is which request may claim a key, and that a key names one request.
"""

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


@dataclass(frozen=True)
class Remembered:
    """The reply remembered for a key, as it was given to `remember`."""

    reply: Any


def fingerprint(body: Any) -> str:
    """The same for requests whose JSON bodies are equal, whatever their key order or spacing."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def claim(
    *, session: Session, owner_id: uuid.UUID, operation: str, key: str, request_fingerprint: str
) -> IdempotentRequest | Remembered:
    """Either the reply remembered for this key (to replay), or a fresh claim on the key (to
    `remember` the reply in, in the same transaction as the work it answers).

    Concurrent requests with one key are serialised by the unique constraint: the second waits
    for the first to commit, then replays its reply. Raises IdempotencyKeyReusedError when
    the key was used within the window for a request with another body.
    """
    stored = _find(session=session, owner_id=owner_id, operation=operation, key=key)
    if stored is None:
        record = IdempotentRequest(
            owner_id=owner_id,
            operation=operation,
            key=key,
            fingerprint=request_fingerprint,
            reply=None,
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
    return Remembered(stored.reply)


def remember(*, session: Session, record: IdempotentRequest, reply: Any) -> None:
    """Keep `reply` (JSON data) under the key `record` claimed."""
    record.reply = reply
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
