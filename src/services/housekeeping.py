"""Deleting rows whose time has passed (`taskapi purge`), a bounded batch at a time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from taskapi.models import IdempotentRequest, RefreshToken
from taskapi.services.idempotency import WINDOW


@dataclass(frozen=True)
class Expiring:
    """A table with rows that expire, and which rows have at a given moment."""

    name: str
    model: type[IdempotentRequest] | type[RefreshToken]
    expired: Callable[[datetime], ColumnElement[bool]]


EXPIRING = (
    # Replays are promised for WINDOW only.
    Expiring(
        "idempotent_requests",
        IdempotentRequest,
        lambda now: IdempotentRequest.created_at < now - WINDOW,
    ),
    # Expired tokens are refused anyway, and revoked ones too: a revoked family has no token
    # left that could keep a session alive, with its rows or without them. Used tokens that
    # are neither stay until they expire, to recognise their reuse.
    Expiring(
        "refresh_tokens",
        RefreshToken,
        lambda now: or_(RefreshToken.expires_at <= now, RefreshToken.revoked_at.is_not(None)),
    ),
)


def purge_batch(*, session: Session, table: Expiring, now: datetime, batch_size: int) -> int:
    """Delete up to `batch_size` expired rows of `table`; how many were deleted. Callers run
    each batch in a unit of work of its own, so that no lock is held for long."""
    doomed = select(table.model.id).where(table.expired(now)).limit(batch_size)
    ids = list(session.scalars(doomed))
    if ids:
        session.execute(delete(table.model).where(table.model.id.in_(ids)))
    return len(ids)
