"""Remembered replies are one opaque JSON value: the storage rules (taskapi.services.idempotency)
know nothing of HTTP; the web layer (taskapi.web.idempotency) gives the value its shape.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = sa.table(
    "idempotent_requests",
    sa.column("id", sa.Uuid()),
    sa.column("status", sa.Integer()),
    sa.column("headers", sa.JSON()),
    sa.column("body", sa.JSON()),
    sa.column("reply", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("idempotent_requests") as batch:
        batch.add_column(sa.Column("reply", sa.JSON(), nullable=True))
    # Keys remembered in the last 24 hours keep replaying what they answered.
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_TABLE.c.id, _TABLE.c.status, _TABLE.c.headers, _TABLE.c.body)
    )
    for row in rows.all():
        reply = {"status": row.status, "headers": row.headers, "body": row.body}
        connection.execute(_TABLE.update().where(_TABLE.c.id == row.id).values(reply=reply))
    with op.batch_alter_table("idempotent_requests") as batch:
        batch.alter_column("reply", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("status")
        batch.drop_column("headers")
        batch.drop_column("body")


def downgrade() -> None:
    with op.batch_alter_table("idempotent_requests") as batch:
        batch.add_column(sa.Column("status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("body", sa.JSON(), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.select(_TABLE.c.id, _TABLE.c.reply)).all():
        reply = row.reply or {}
        connection.execute(
            _TABLE.update()
            .where(_TABLE.c.id == row.id)
            .values(
                status=reply.get("status", 0),
                headers=reply.get("headers", {}),
                body=reply.get("body"),
            )
        )
    with op.batch_alter_table("idempotent_requests") as batch:
        batch.alter_column("status", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("headers", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("body", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("reply")
