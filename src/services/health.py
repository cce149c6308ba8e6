"""Whether this process can serve: its database answers and carries the expected schema."""

from __future__ import annotations

from sqlalchemy.orm import Session

from taskapi.errors import ServiceUnavailableError
from taskapi.migrations import current_revisions, head_revision, known_revisions

NOT_MIGRATED_RETRY_AFTER = 30  # seconds: a release's migration runs before its replicas


def check_ready(*, session: Session) -> None:
    """Return when the database answers and is not behind the code's migrations.

    Raises ServiceUnavailableError when the database is behind (or was never migrated). A
    revision this code does not know means a newer release migrated it; migrations are
    backward compatible (docs/deployment.md), so an older replica stays ready during a rollout.
    An unreachable database raises SQLAlchemy's OperationalError, answered 503 as well.
    """
    expected = head_revision()
    found = current_revisions(session.connection())
    newer = not set(found) <= known_revisions()
    if found != (expected,) and not newer:
        raise ServiceUnavailableError(
            f"The database is at revision {', '.join(found) or 'none'}, not {expected}.",
            retry_after=NOT_MIGRATED_RETRY_AFTER,
        )
