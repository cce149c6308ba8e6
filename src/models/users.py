"""The users table."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from taskapi.models.base import Base, new_id, utc_now


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'admin')", name="role_known"),
        CheckConstraint("age BETWEEN 13 AND 130", name="age_in_range"),
        # Serves the default listing order (newest first) with the id as tie-breaker.
        Index("ix_users_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Stored normalised (trimmed, lower-cased) so that the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    age: Mapped[int]
    role: Mapped[str] = mapped_column(String(16), default=Role.USER.value)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Part of every access token; raising it (on a password change) invalidates all of them.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
