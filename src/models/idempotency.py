"""Replies remembered under a client's Idempotency-Key, so a retried request is answered the
same way instead of acting twice."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from taskapi.models.base import Base, new_id, utc_now


class IdempotentRequest(Base):
    __tablename__ = "idempotent_requests"
    __table_args__ = (
        # One key per user and operation; concurrent requests with one key collide here.
        UniqueConstraint("owner_id", "operation", "key"),
        Index("ix_idempotent_requests_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the canonical request body: the same key with another body is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The reply, as data whose shape the web layer gives it (taskapi.web.idempotency).
    reply: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
