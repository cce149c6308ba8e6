"""Each user's task count, kept on the user's row (taskapi.services.task_counts).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("task_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE users SET task_count = (SELECT COUNT(*) FROM tasks WHERE tasks.owner_id = users.id)"
    )


def downgrade() -> None:
    # In place, SQLite included (3.35+): batch mode's copy-and-drop of the users table would
    # cascade the drop's implicit DELETE to every task.
    op.drop_column("users", "task_count")
