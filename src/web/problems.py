"""Every error the service can answer with, rendered as RFC 9457 problem+json in one place.

A domain error is rendered from what its class declares (`taskapi.errors`): its problem type's
slug names an entry of `PROBLEM_TYPES` below, which gives the title and status; its
`retry_after`, `challenge` and `pointer` become headers and the `errors` list. Adding an error is
a class, and for a new problem type a line in `PROBLEM_TYPES` and one in the spec's table of
problem types (tests/test_spec.py holds the two equal).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.types import Send

from taskapi import errors
from taskapi.request_id import current_request_id
from taskapi.web.headers import shortened
from taskapi.web.outcome import note_dependency_failure, note_exception, note_problem
from taskapi.web.routes import AllowedMethods
from taskapi.web.security import www_authenticate

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

ErrorHandler = Callable[[ConnexionRequest, Exception], Awaitable[ConnexionResponse]]


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        # tag: URIs (RFC 4151) are stable, globally unique and never dereferenced by accident.
        return f"tag:taskapi.dev,2026:problem/{self.slug}"


VALIDATION_ERROR = ProblemType("validation-error", "Invalid request", 400)
MALFORMED_REQUEST = ProblemType("malformed-request", "Malformed request", 400)
UNAUTHORIZED = ProblemType("unauthorized", "Unauthorized", 401)
FORBIDDEN = ProblemType("forbidden", "Forbidden", 403)
NOT_FOUND = ProblemType("not-found", "Not found", 404)
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", "Method not allowed", 405)
CONFLICT = ProblemType("conflict", "Conflict", 409)
PRECONDITION_FAILED = ProblemType("precondition-failed", "Precondition failed", 412)
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", "Payload too large", 413)
UNSUPPORTED_MEDIA_TYPE = ProblemType("unsupported-media-type", "Unsupported media type", 415)
REQUEST_HEADERS_TOO_LARGE = ProblemType(
    "request-headers-too-large", "Request header fields too large", 431
)
IDEMPOTENCY_KEY_REUSED = ProblemType("idempotency-key-reused", "Idempotency key reused", 422)
TOO_MANY_REQUESTS = ProblemType("too-many-requests", "Too many requests", 429)
INTERNAL_ERROR = ProblemType("internal-error", "Internal server error", 500)
SERVICE_UNAVAILABLE = ProblemType("service-unavailable", "Service unavailable", 503)

# Every problem type the service answers with, by slug: the spec's table lists the same.
PROBLEM_TYPES: Mapping[str, ProblemType] = {
    problem.slug: problem
    for problem in (
        VALIDATION_ERROR,
        MALFORMED_REQUEST,
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        CONFLICT,
        PRECONDITION_FAILED,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        REQUEST_HEADERS_TOO_LARGE,
        IDEMPOTENCY_KEY_REUSED,
        TOO_MANY_REQUESTS,
        INTERNAL_ERROR,
        SERVICE_UNAVAILABLE,
    )
}

# The database is unreachable, dropped the connection, timed out (connect, pool or statement)
# or asked for a retry (serialization failure): the request may succeed if sent again.
DATABASE_UNAVAILABLE_ERRORS = (OperationalError, DisconnectionError, PoolTimeoutError)
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_DETAIL = "The database is unavailable; try again shortly."

# Connexion and Starlette raise these for requests that never reach a handler.
_HTTP_PROBLEMS: Mapping[int, ProblemType] = {
    400: VALIDATION_ERROR,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
}

INTERNAL_DETAIL = "The service met an unexpected condition. Quote the request id when reporting it."


@dataclass(frozen=True)
class FieldError:
    pointer: str
    message: str


# A 400 lists at most this many failing fields (the spec's Problem schema says so): a body of
# thousands of unknown keys must not cost a megabyte of answer.
MAX_FIELD_ERRORS = 50


class RequestValidationError(Exception):
    """The request breaks the contract; carries its first MAX_FIELD_ERRORS failing fields,
    and whether there were more."""

    def __init__(self, field_errors: Sequence[FieldError]) -> None:
        super().__init__(f"{len(field_errors)} invalid field(s)")
        self.field_errors = field_errors[:MAX_FIELD_ERRORS]
        self.more_errors = len(field_errors) > MAX_FIELD_ERRORS


class MalformedRequestError(Exception):
    """The body cannot be read as JSON text in UTF-8."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PayloadTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The body is larger than {limit} bytes.")
        self.detail = str(self)


def render_problem(
    problem_type: ProblemType,
    detail: str,
    *,
    instance: str,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of a problem response (noted on the request's outcome)."""
    note_problem(problem_type.slug)
    body: dict[str, Any] = {
        "type": problem_type.uri,
        "title": problem_type.title,
        "status": problem_type.status,
        "detail": detail,
        "instance": instance,
        "request_id": current_request_id(),
        **(extensions or {}),
    }
    return (
        problem_type.status,
        {**(headers or {}), "Content-Type": PROBLEM_JSON},
        orjson.dumps(body),
    )


async def send_problem(
    send: Send,
    problem_type: ProblemType,
    detail: str,
    *,
    instance: str,
    headers: Mapping[str, str] | None = None,
    raw_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with a problem straight over ASGI, for the edge (`taskapi.web.edge`), which
    answers outside Connexion's exception handling (body limits, rate limits, the last-resort
    500)."""
    status, all_headers, body = render_problem(
        problem_type, detail, instance=instance, headers=headers
    )
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in all_headers.items()]
    encoded += [*raw_headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": body})


def _response(
    request: ConnexionRequest,
    problem_type: ProblemType,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> ConnexionResponse:
    status, all_headers, body = render_problem(
        problem_type, detail, instance=request.url.path, headers=headers, extensions=extensions
    )
    return ConnexionResponse(
        status_code=status, mimetype=PROBLEM_JSON, body=body, headers=all_headers
    )


async def _domain_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, errors.DomainError)
    problem_type = PROBLEM_TYPES[exc.problem_type]
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    if exc.challenge is not None:
        headers["WWW-Authenticate"] = www_authenticate(exc.challenge, exc.detail)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.pointer is not None:
        extensions["errors"] = [{"pointer": exc.pointer, "message": exc.detail}]
    if exc.dependency is not None:
        note_dependency_failure(exc.dependency)
    return _response(request, problem_type, exc.detail, headers=headers, extensions=extensions)


async def _validation_failed(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, RequestValidationError)
    count = len(exc.field_errors)
    detail = f"The request has {count} invalid field{'s' if count != 1 else ''}."
    extensions: dict[str, Any] = {
        "errors": [{"pointer": e.pointer, "message": e.message} for e in exc.field_errors]
    }
    if exc.more_errors:
        detail = f"The request has more than {count} invalid fields; the first {count} are listed."
        extensions["more_errors"] = True
    return _response(request, VALIDATION_ERROR, detail, extensions=extensions)


async def _malformed_request(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, MalformedRequestError)
    return _response(request, MALFORMED_REQUEST, exc.detail)


async def _payload_too_large(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, PayloadTooLargeError)
    return _response(request, PAYLOAD_TOO_LARGE, exc.detail, headers={"Connection": "close"})


def _http_error_handler(allowed_methods: AllowedMethods) -> ErrorHandler:
    async def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        """Errors raised by Connexion or Starlette before a handler runs."""
        assert isinstance(exc, HTTPException)
        status = exc.status if isinstance(exc, ProblemException) else exc.status_code
        problem_type = _HTTP_PROBLEMS.get(status)
        if problem_type is None:
            return await _unhandled(request, exc)
        headers = dict(exc.headers or {})
        if problem_type is METHOD_NOT_ALLOWED:
            headers["Allow"] = ", ".join(allowed_methods.for_path(request.url.path))
            detail = f"{request.method} is not allowed here; see the Allow header."
        elif problem_type is NOT_FOUND:
            detail = "There is nothing at this path."
        elif problem_type is UNAUTHORIZED:
            # Connexion's own 401s: no token, or an Authorization header that is not Bearer.
            detail = "A bearer token is required: send `Authorization: Bearer <access token>`."
            headers["WWW-Authenticate"] = www_authenticate(None, detail)
        elif problem_type is UNSUPPORTED_MEDIA_TYPE:
            content_type = shortened(request.headers.get("content-type", ""))
            detail = f"This operation does not accept bodies of type {content_type!r}."
        else:
            detail = str(exc.detail)
        return _response(request, problem_type, detail, headers=headers)

    return http_error


async def _database_unavailable(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # One line, no traceback: during an outage every request lands here.
    logger.warning("database unavailable", extra={"error_type": type(exc).__name__})
    note_dependency_failure("database_pool" if isinstance(exc, PoolTimeoutError) else "database")
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
    return _response(request, SERVICE_UNAVAILABLE, DATABASE_UNAVAILABLE_DETAIL, headers=headers)


async def _unhandled(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # Logged once, with its traceback, under the request id; the client learns nothing of it.
    kind = "database error" if isinstance(exc, SQLAlchemyError) else "unhandled exception"
    logger.error(kind, exc_info=exc, extra={"error_type": type(exc).__name__})
    note_exception(exc)
    return _response(request, INTERNAL_ERROR, INTERNAL_DETAIL)


def register_problem_handlers(app: AsyncApp, *, allowed_methods: AllowedMethods) -> None:
    """Install the mapping on the app: the only place where exceptions become responses."""
    http_error = _http_error_handler(allowed_methods)
    app.add_error_handler(errors.DomainError, _domain_error)
    app.add_error_handler(RequestValidationError, _validation_failed)
    app.add_error_handler(MalformedRequestError, _malformed_request)
    app.add_error_handler(PayloadTooLargeError, _payload_too_large)
    app.add_error_handler(HTTPException, http_error)
    app.add_error_handler(ProblemException, http_error)
    for database_error in DATABASE_UNAVAILABLE_ERRORS:
        app.add_error_handler(database_error, _database_unavailable)
    app.add_error_handler(Exception, _unhandled)
