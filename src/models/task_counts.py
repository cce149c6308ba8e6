"""The task_counts table: how many tasks each user owns, split over a few rows per user."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, SmallInteger, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from taskapi.models.base import Base


class TaskCount(Base):
    """One share of a user's task count: the user's count is the sum of their rows' counts.

    A row's own count means nothing alone and may be negative (a task created under one share
    and deleted under another). A user with no rows owns no tasks.
    """

    __tablename__ = "task_counts"

    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    share: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int]
