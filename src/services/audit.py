"""Security events as structured records on their own logger, `taskapi.audit`.

Each record says what happened (`event`), to whom (`actor`: a user id, or `account`: the email a
credential check was for), from where (`client`), how it ended (`outcome`); the request id is
added by the logging setup. Callers pass identifiers and outcomes only: never a password, a
token or a hash (the logging filter would redact those keys anyway).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("taskapi.audit")


def record(event: str, *, outcome: str, **fields: Any) -> None:
    """Write one audit record: `record("login", outcome="failure", account=email, client=ip)`."""
    logger.info(event, extra={"event": event, "outcome": outcome, **fields})
