"""The `taskapi` command: `taskapi migrate`, `taskapi serve`, `taskapi create-admin`,
`taskapi purge`."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import importlib.metadata
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from taskapi.db import Database
from taskapi.errors import InvalidFieldError, NotFoundError
from taskapi.logging_conf import configure_logging
from taskapi.migrations import upgrade_to_head
from taskapi.models import Role
from taskapi.services import audit, users
from taskapi.services.housekeeping import EXPIRING, purge_batch
from taskapi.services.passwords import use_password_profile
from taskapi.serving import serve
from taskapi.settings import Settings

logger = logging.getLogger("taskapi")

# The spec's bounds for a password (components/schemas/UserCreate).
MIN_PASSWORD, MAX_PASSWORD = 12, 128


def migrate(settings: Settings) -> None:
    upgrade_to_head(settings.database_url)
    logger.info("database migrated to the latest revision")


def create_admin(settings: Settings, args: argparse.Namespace) -> None:
    """Make the account with this email an admin, registering it first if it does not exist.

    The API can never grant the admin role; this command, run by an operator, is the only way.
    """
    use_password_profile(settings.password_hash_profile)
    database = Database.connect(settings.database_url)
    try:
        with database.transaction() as session:
            try:
                user = users.promote_to_admin(session=session, email=args.email)
            except NotFoundError:
                user_in = users.UserCreate(
                    email=args.email, name=args.name, age=args.age, password=_new_password(args)
                )
                try:
                    user = users.create(session=session, user_in=user_in, role=Role.ADMIN)
                except InvalidFieldError as refused:
                    raise SystemExit(refused.detail) from None
            audit.record("admin.granted", outcome="success", actor="operator", target=str(user.id))
            logger.info("admin ready", extra={"user_id": str(user.id), "email": user.email})
    finally:
        database.dispose()


def purge(settings: Settings, args: argparse.Namespace) -> None:
    """Delete every expired row (EXPIRING), one bounded batch per transaction, so that the
    service's own writes wait at most one batch behind it."""
    database = Database.connect(settings.database_url)
    now = datetime.now(UTC)
    try:
        for table in EXPIRING:
            deleted = 0
            while True:
                with database.transaction(writes=True) as session:
                    batch = purge_batch(
                        session=session, table=table, now=now, batch_size=args.batch_size
                    )
                deleted += batch
                if batch < args.batch_size:
                    break
            logger.info("purged", extra={"table": table.name, "rows": deleted})
    finally:
        database.dispose()


def _new_password(args: argparse.Namespace) -> str:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise SystemExit(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="taskapi", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=importlib.metadata.version("taskapi")
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply every pending database migration")
    serve_command = commands.add_parser("serve", help="migrate, then serve the API with uvicorn")
    serve_command.add_argument(
        "--workers", type=int, help="worker processes (default: WORKERS, else 1)"
    )
    admin = commands.add_parser(
        "create-admin", help="make an account an admin, registering it if needed"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Administrator", help="for a new account")
    admin.add_argument("--age", type=int, default=30, help="for a new account")
    admin.add_argument(
        "--password-stdin", action="store_true", help="read a new account's password from stdin"
    )
    purge_command = commands.add_parser(
        "purge", help="delete expired idempotency records and refresh tokens, in batches"
    )
    purge_command.add_argument(
        "--batch-size", type=_positive, default=1000, help="rows per transaction (default 1000)"
    )
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    migrate(settings)
    if args.command == "serve":
        if args.workers is not None:
            settings = dataclasses.replace(settings, workers=args.workers)
        serve(settings)
    elif args.command == "create-admin":
        create_admin(settings, args)
    elif args.command == "purge":
        purge(settings, args)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


if __name__ == "__main__":
    main()
