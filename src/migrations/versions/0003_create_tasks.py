"""Create the tasks table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from taskapi.models.base import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, columns) of every index; each serves `WHERE owner_id = ? ORDER BY <key>, id`.
INDEXES = [
    ("ix_tasks_owner_id_created_at_id", ["owner_id", "created_at", "id"]),
    ("ix_tasks_owner_id_updated_at_id", ["owner_id", "updated_at", "id"]),
    ("ix_tasks_owner_id_due_date_id", ["owner_id", "due_date", "id"]),
    ("ix_tasks_owner_id_priority_rank_id", ["owner_id", "priority_rank", "id"]),
    ("ix_tasks_owner_id_title_id", ["owner_id", "title", "id"]),
]


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=10_000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("priority_rank", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        # op.f() marks each name as final; a bare "ck_tasks_x" would get the naming
        # convention's prefix a second time (ck_tasks_ck_tasks_x), unlike the model's.
        sa.CheckConstraint(
            "status IN ('todo', 'in_progress', 'done')", name=op.f("ck_tasks_status_known")
        ),
        sa.CheckConstraint(
            "priority IN ('low', 'medium', 'high', 'urgent')", name=op.f("ck_tasks_priority_known")
        ),
        sa.CheckConstraint(
            "priority_rank = CASE priority WHEN 'low' THEN 0 WHEN 'medium' THEN 1"
            " WHEN 'high' THEN 2 WHEN 'urgent' THEN 3 END",
            name=op.f("ck_tasks_priority_rank_matches"),
        ),
        sa.CheckConstraint(
            "(status = 'done') = (completed_at IS NOT NULL)",
            name=op.f("ck_tasks_completed_at_iff_done"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_tasks_version_positive")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_tasks_owner_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    for name, columns in INDEXES:
        op.create_index(name, "tasks", columns)


def downgrade() -> None:
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name="tasks")
    op.drop_table("tasks")
