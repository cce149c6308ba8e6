"""How many tasks each user owns, kept on the user's row.

The total of an unfiltered listing is then one row read instead of a COUNT over every task the
owner has, which grows with them (a million-row table made page 1 several times slower). The
count changes in the same transaction as the tasks it counts, so it is exact; filtered listings
still count their rows.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from taskapi.models import User


def adjust(*, session: Session, owner_id: uuid.UUID, by: int) -> None:
    """Add `by` (negative to remove) to the owner's count, atomically in the database."""
    session.execute(
        update(User)
        .where(User.id == owner_id)
        # Kept as it is: a task changing is not the account changing (`updated_at` would
        # otherwise take its on-update default).
        .values(task_count=User.task_count + by, updated_at=User.updated_at)
    )


def get(*, session: Session, owner_id: uuid.UUID) -> int:
    return session.scalar(select(User.task_count).where(User.id == owner_id)) or 0
