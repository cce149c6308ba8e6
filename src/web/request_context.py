"""The outermost layer of every request: its id, its access record, and the limits on the size
of its header fields and of its body.

It sits outside Connexion's own middleware so that whatever happens inside, routing errors
and crashes included, the response carries `X-Request-ID` and is logged exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskapi.request_id import REQUEST_ID_HEADER, begin_request, end_request
from taskapi.web.headers import over_limits, shortened
from taskapi.web.outcome import note_exception
from taskapi.web.problems import (
    INTERNAL_DETAIL,
    INTERNAL_ERROR,
    PAYLOAD_TOO_LARGE,
    REQUEST_HEADERS_TOO_LARGE,
    PayloadTooLargeError,
    ProblemType,
    send_problem,
)
from taskapi.web.security import security_headers

access_logger = logging.getLogger("taskapi.access")
logger = logging.getLogger(__name__)


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        max_header_count: int,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count
        # Shared objects built at start-up (the auth policy), exposed as `request.state`.
        self.state = dict(state or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = Headers(scope=scope)
        request_id, token = begin_request(headers.get(REQUEST_ID_HEADER))
        # Connexion's router records the operationId here; sharing the dict lets us read it back.
        if scope.get("extensions") is None:
            scope["extensions"] = {}
        scope.setdefault("state", {}).update(self.state)
        started = time.perf_counter()
        response: dict[str, Any] = {"status": None}

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response_headers = list(message.get("headers", []))
                message["headers"] = [
                    *response_headers,
                    *security_headers(response_headers),
                    (b"x-request-id", request_id.encode("ascii")),
                ]
            await send(message)

        try:
            refusal = self._refusal(scope, headers)
            if refusal is not None:
                # The unread body stays on the wire, so the connection cannot be reused.
                await send_problem(
                    send_with_request_id,
                    *refusal,
                    instance=scope["path"],
                    headers={"Connection": "close"},
                )
            else:
                await self.app(scope, self._limited(receive), send_with_request_id)
        except Exception as exc:
            # Connexion's exception layer answers for nearly everything; this is the backstop.
            logger.error("unhandled exception outside the API layer", exc_info=exc)
            note_exception(exc)
            if response["status"] is None:
                await send_problem(
                    send_with_request_id, INTERNAL_ERROR, INTERNAL_DETAIL, instance=scope["path"]
                )
        finally:
            self._log_access(scope, headers, response["status"] or 500, started)
            end_request(token)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[ProblemType, str] | None:
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

    def _limited(self, receive: Receive) -> Receive:
        """Count bodies sent without Content-Length (chunked) and stop reading past the limit."""
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise PayloadTooLargeError(self.max_body_bytes)
            return message

        return limited_receive

    @staticmethod
    def _log_access(scope: Scope, headers: Headers, status: int, started: float) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        routing = (scope.get("extensions") or {}).get("connexion_routing") or {}
        client = scope.get("client")
        access_logger.info(
            "%s %s %s",
            scope["method"],
            scope["path"],
            status,
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "route": routing.get("operation_id"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "client": client[0] if client else None,
                "user_agent": shortened(headers.get("user-agent")),
            },
        )
