"""The `taskapi` command: `taskapi migrate` and `taskapi serve`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import uvicorn

from taskapi.logging_conf import configure_logging
from taskapi.migrations import upgrade_to_head
from taskapi.settings import Settings

logger = logging.getLogger("taskapi")


def migrate(settings: Settings) -> None:
    upgrade_to_head(settings.database_url)
    logger.info("database migrated to the latest revision")


def serve(settings: Settings) -> None:
    uvicorn.run(
        "taskapi.asgi:app",
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON logging, configured when taskapi.asgi is imported
        access_log=False,  # replaced by the structured access record
        server_header=False,
        proxy_headers=False,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="taskapi", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply every pending database migration")
    commands.add_parser("serve", help="migrate, then serve the API with uvicorn")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    migrate(settings)
    if args.command == "serve":
        serve(settings)


if __name__ == "__main__":
    main()
