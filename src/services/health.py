"""Whether this process can serve: its database answers and carries the expected schema, and
the rate-limit store (Redis, when configured) answers."""

from __future__ import annotations

from sqlalchemy.orm import Session

from taskapi.errors import ServiceUnavailableError
from taskapi.migrations import current_revisions, head_revision, known_revisions
from taskapi.services.throttle import STORE_RETRY_AFTER_SECONDS, StoreUnavailableError, Throttle

NOT_MIGRATED_RETRY_AFTER = 30  # seconds: a release's migration runs before its replicas


def check_ready(*, session: Session, throttle: Throttle) -> None:
    """Return when the database answers and is not behind the code's migrations, and the
    throttle's shared store answers (when it has one).

    Raises ServiceUnavailableError when the database is behind (or was never migrated). A
    revision this code does not know means a newer release migrated it; migrations are
    backward compatible (docs/deployment.md), so an older replica stays ready during a rollout.
    An unreachable database raises SQLAlchemy's OperationalError, answered 503 as well; a
    store that does not answer in time raises ServiceUnavailableError naming Redis.
    """
    expected = head_revision()
    found = current_revisions(session.connection())
    newer = not set(found) <= known_revisions()
    if found != (expected,) and not newer:
        raise ServiceUnavailableError(
            f"The database is at revision {', '.join(found) or 'none'}, not {expected}.",
            retry_after=NOT_MIGRATED_RETRY_AFTER,
        )
    if throttle.shared:
        try:
            throttle.check()
        except StoreUnavailableError:
            raise ServiceUnavailableError(
                "Redis, the rate-limit store, does not answer.",
                retry_after=STORE_RETRY_AFTER_SECONDS,
                dependency="redis",
            ) from None
