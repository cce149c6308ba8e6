"""What every request gets at the edge besides its id: the limits on the size of its header
fields and of its body, checked before anything reads them, and its one access record.

`taskapi.web.edge` applies both outside Connexion's own layers, so that whatever happens inside,
routing errors and crashes included, the request is bounded and logged exactly once.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope

from taskapi.web.headers import over_limits, shortened
from taskapi.web.problems import (
    PAYLOAD_TOO_LARGE,
    REQUEST_HEADERS_TOO_LARGE,
    PayloadTooLargeError,
    ProblemType,
)

access_logger = logging.getLogger("taskapi.access")


class RequestLimits:
    def __init__(
        self, *, max_body_bytes: int, max_header_bytes: int, max_header_count: int
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count

    def refusal(self, scope: Scope, headers: Headers) -> tuple[ProblemType, str] | None:
        """Why the request is refused before it is read, if it is: header fields over their
        bounds, or a declared body over its own."""
        too_many = over_limits(
            scope["headers"], max_bytes=self.max_header_bytes, max_count=self.max_header_count
        )
        if too_many is not None:
            return REQUEST_HEADERS_TOO_LARGE, too_many
        if self._declared_length(headers) > self.max_body_bytes:
            return PAYLOAD_TOO_LARGE, str(PayloadTooLargeError(self.max_body_bytes))
        return None

    @staticmethod
    def _declared_length(headers: Headers) -> int:
        try:
            return int(headers.get("content-length", "0"))
        except ValueError:
            return 0

    def limited(self, receive: Receive) -> Receive:
        """Count bodies sent without Content-Length (chunked) and stop reading past the limit."""
        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(limit)
            return message

        return limited_receive


def log_access(
    scope: Scope, headers: Headers, *, route: str | None, status: int, started: float
) -> None:
    """The request's access record: `route` is the operationId routing resolved, if any."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    access_logger.info(
        "%s %s %s",
        scope["method"],
        scope["path"],
        status,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "client": client[0] if client else None,
            "user_agent": shortened(headers.get("user-agent")),
        },
    )
