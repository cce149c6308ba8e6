"""Alembic's entry point: runs migrations on the connection it is given, or on the URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from taskapi.db import create_engine_for
from taskapi.models import Base
from taskapi.settings import Settings

config = context.config
target_metadata = Base.metadata
# Any constant: the key of the PostgreSQL advisory lock migrations hold (ASCII "taskapi").
MIGRATION_LOCK_KEY = 0x7461736B617069


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # The alembic command run by hand reads the URL from the environment, like the service.
    url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    engine = create_engine_for(url)
    try:
        with engine.connect() as fresh_connection:
            _run(fresh_connection)
    finally:
        engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together on a new database would each create alembic_version;
            # one at a time, the later ones find the work done. Held until the commit.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")
run_migrations()
