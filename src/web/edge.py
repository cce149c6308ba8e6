"""The edge: our one ASGI layer around Connexion's, a single pass per request.

In order, a request gets its id (adopted or made); the bounds on its header fields and its
declared body (431, 413); CORS's preflight answer, when CORS is configured; the general rate
limit (429); the served spec; and otherwise Connexion's stack. Whoever answers, the answer goes
out through one send wrapper (`_Answer`) that adds what the concerns ask for: the Swagger UI
page's CSP, deprecation notices, RateLimit headers, CORS's headers, the security headers and
the request id. Then the request gets one access record and one metrics observation.

Each concern keeps its logic in its own module, as a plain object or function called from here:
`request_context` (limits, access record), `rate_limits`, `deprecation`, `spec_document`,
`security` (security headers, the page's CSP) and `metrics`. They were six middlewares, six
hops per request, most with a send wrapper of their own; CORS, when on, parsed the headers again.

What sits outside, when configured: the proxy-headers rewrite (outermost, before anything reads
the client address) and tracing's layers (so that the access record carries the trace's ids;
they begin the request's outcome, which the edge then shares).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskapi.request_id import REQUEST_ID_HEADER, begin_request, end_request
from taskapi.web.deprecation import Deprecations, Notice, announced
from taskapi.web.metrics import Metrics
from taskapi.web.outcome import begin_outcome, current_outcome, end_outcome, note_exception
from taskapi.web.problems import INTERNAL_DETAIL, INTERNAL_ERROR, send_problem
from taskapi.web.rate_limits import RateLimit, RawHeaders
from taskapi.web.request_context import RequestLimits, log_access
from taskapi.web.security import HeldPage, security_headers
from taskapi.web.spec_document import ServedSpec

logger = logging.getLogger(__name__)


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: RequestLimits,
        rate_limit: RateLimit,
        deprecations: Deprecations,
        documents: ServedSpec,
        metrics: Metrics | None,
        state: Mapping[str, Any],
        cors: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.rate_limit = rate_limit
        self.deprecations = deprecations
        self.documents = documents
        self.metrics = metrics  # None when metrics are switched off
        # Shared objects built at start-up (the auth policy), exposed as `request.state`.
        self.state = dict(state)
        # Starlette's CORS, asked for its preflight answer and for the headers of every other
        # answer from the rate limit inward, at the place its layer held in the stack.
        self.cors = CORSMiddleware(app, **cors) if cors is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id, request_token = begin_request(headers.get(REQUEST_ID_HEADER))
        # Connexion's router records the operationId here; sharing the dict lets us read it back.
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        scope.setdefault("state", {}).update(self.state)
        outcome = current_outcome()
        outcome_token = None
        if outcome is None:  # tracing, outside, begins it when it traces the request
            outcome, outcome_token = begin_outcome()
        answer = _Answer(send, request_id.encode("ascii"), cors=self.cors, request_headers=headers)
        metrics = self.metrics
        if metrics is not None:
            metrics.request_began()
        started = time.perf_counter()
        try:
            await self._serve(scope, receive, headers, answer)
        except Exception as exc:
            # Connexion's exception layer answers for nearly everything; this is the backstop.
            logger.error("unhandled exception outside the API layer", exc_info=exc)
            note_exception(exc)
            if answer.status is None:
                await send_problem(
                    answer.finish, INTERNAL_ERROR, INTERNAL_DETAIL, instance=scope["path"]
                )
        finally:
            status = answer.status or 500  # no response started: the client saw none
            route = (extensions.get("connexion_routing") or {}).get("operation_id")
            log_access(scope, headers, route=route, status=status, started=started)
            end_request(request_token)
            if metrics is not None:
                seconds = time.perf_counter() - started
                metrics.request_answered(route, scope["method"], status, seconds, outcome)
            if outcome_token is not None:
                end_outcome(outcome_token)

    async def _serve(
        self, scope: Scope, receive: Receive, headers: Headers, answer: _Answer
    ) -> None:
        refusal = self.limits.refusal(scope, headers)
        if refusal is not None:
            # The unread body stays on the wire, so the connection cannot be reused.
            await send_problem(
                answer.finish, *refusal, instance=scope["path"], headers={"Connection": "close"}
            )
            return
        if self.cors is not None and _is_preflight(scope, headers):
            # Preflights spend no budget: browsers send them on their own.
            preflight = self.cors.preflight_response(request_headers=headers)
            await preflight(scope, receive, answer.finish)
            return
        admission = await self.rate_limit.admit(scope)
        if admission.refused_for is not None:
            refused_for, limit_headers = admission.refused_for, admission.headers
            await self.rate_limit.refuse(scope, answer.send, refused_for, limit_headers)
            return
        answer.added = admission.headers
        answer.notices = self.deprecations.notices(scope)
        document = self.documents.response(scope)
        if document is not None:
            await document(scope, receive, answer.send)
            return
        await self.app(scope, self.limits.limited(receive), answer.send)


def _is_preflight(scope: Scope, headers: Headers) -> bool:
    """As Starlette's CORSMiddleware tells a preflight from a request to answer."""
    return (
        scope["method"] == "OPTIONS"
        and "origin" in headers
        and "access-control-request-method" in headers
    )


class _Answer:
    """One request's way out. `send` takes the answers from the rate limit inward (a 429, the
    spec, Connexion's): it holds an HTML page for its CSP, then adds the deprecation notices
    and the RateLimit headers, lets CORS add its own, and goes on to `finish`. `finish` takes
    every answer, the edge's own refusals and last-resort 500 straight away: it records the
    status and adds the security headers and the request id."""

    __slots__ = (
        "_page",
        "_request_headers",
        "_request_id",
        "_send",
        "added",
        "cors",
        "notices",
        "status",
    )

    def __init__(
        self,
        send: Send,
        request_id: bytes,
        *,
        cors: CORSMiddleware | None,
        request_headers: Headers,
    ) -> None:
        self._send = send
        self._request_id = request_id
        self.cors = cors
        self._request_headers = request_headers
        self.added: RawHeaders = ()
        self.notices: list[Notice] = []
        self.status: int | None = None
        self._page: HeldPage | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if HeldPage.starts(message):
                self._page = HeldPage(message)
                return
            await self._start(message)
            return
        if self._page is not None and message["type"] == "http.response.body":
            whole = self._page.add(message)
            if whole is None:
                return
            start, message = whole
            await self._start(start)
        await self._send(message)

    async def _start(self, message: Message) -> None:
        if self.notices:
            message["headers"] = announced(message.get("headers", []), self.notices)
        if self.added:
            message["headers"] = [*message.get("headers", []), *self.added]
        if self.cors is None:
            await self.finish(message)
        else:
            await self.cors.send(message, self.finish, self._request_headers)

    async def finish(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = list(message.get("headers", ()))
            headers += security_headers(headers)
            headers.append((b"x-request-id", self._request_id))
            message["headers"] = headers
        await self._send(message)
