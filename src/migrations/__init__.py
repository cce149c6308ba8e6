"""Alembic migrations, applied by `taskapi migrate` (and so by `make run`) and by the tests."""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

# Alembic's package-resource form: found through importlib.resources wherever the package is
# installed, a wheel as well as a checkout.
SCRIPT_LOCATION = "taskapi:migrations"


def alembic_config(url: str, *, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # `%` is ConfigParser's interpolation character; a password may contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(url: str, *, connection: Connection | None = None) -> None:
    command.upgrade(alembic_config(url, connection=connection), "head")


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


@functools.cache
def head_revision() -> str | None:
    """The revision the code expects the database at (read from the scripts once)."""
    return _scripts().get_current_head()


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this code has a script for."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions the database is at; empty when it was never migrated."""
    return tuple(MigrationContext.configure(connection).get_current_heads())
