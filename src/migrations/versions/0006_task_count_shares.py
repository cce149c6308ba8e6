"""Task counts move off the users' rows into task_counts, split in shares
(taskapi.services.task_counts says why).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_counts",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("share", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_task_counts_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner_id", "share", name=op.f("pk_task_counts")),
    )
    # Each user's whole count becomes their share 0.
    op.execute(
        "INSERT INTO task_counts (owner_id, share, count)"
        " SELECT id, 0, task_count FROM users WHERE task_count <> 0"
    )
    # In place, SQLite included (3.35+): batch mode's copy-and-drop of the users table would
    # cascade the drop's implicit DELETE to every task.
    op.drop_column("users", "task_count")


def downgrade() -> None:
    op.add_column(
        "users", sa.Column("task_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE users SET task_count ="
        " COALESCE((SELECT SUM(count) FROM task_counts WHERE owner_id = users.id), 0)"
    )
    op.drop_table("task_counts")
