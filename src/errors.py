"""The domain's errors: one hierarchy, raised by services, knowing nothing of HTTP.

Each class declares what its refusal is, as data: `problem_type` (a slug from the spec's table
of problem types), and where it applies `retry_after`, `challenge` (the RFC 6750 error code of
a credential refusal), `pointer` (the input it refuses) or `dependency` (what failed).
`taskapi.web.problems` renders any `DomainError` from those declarations alone: adding an error
is a class here and, for a new type, a line in that module's table and in the spec's.
"""

from typing import ClassVar


class DomainError(Exception):
    """A request the domain refuses; `detail` is safe to show to the client."""

    problem_type: ClassVar[str]
    # Most refusals leave no trace: the unit of work rolls back. The few whose refusal is
    # itself a change to keep (revoking a stolen token family) set this.
    persist_changes: ClassVar[bool] = False
    # Seconds after which the same request may succeed, when the refusal is temporary.
    retry_after: int | None = None
    # The RFC 6750 error code, when the refusal is about the caller's credentials.
    challenge: str | None = None
    # The JSON pointer of the one input refused (`/body/title`), when there is one.
    pointer: str | None = None
    # The dependency whose failure caused the refusal (`redis`), for the metrics of failures.
    dependency: str | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    """The resource does not exist (or the caller may not know that it does)."""

    problem_type = "not-found"


class ConflictError(DomainError):
    """The request conflicts with the current state, such as a uniqueness rule."""

    problem_type = "conflict"


class PreconditionFailedError(DomainError):
    """The caller's idea of the resource's version is stale; it must read it again first."""

    problem_type = "precondition-failed"


class InvalidCursorError(DomainError):
    """A page cursor was altered, or was issued for another listing (sort, filters or owner)."""

    problem_type = "validation-error"
    pointer = "/query/cursor"


class AuthenticationError(DomainError):
    """No valid credentials: `reason` is an RFC 6750 error code (`invalid_token`, ...)."""

    problem_type = "unauthorized"

    def __init__(self, detail: str, *, reason: str = "invalid_token") -> None:
        super().__init__(detail)
        self.challenge = reason


class StolenTokenError(AuthenticationError):
    """A refresh token was presented twice. Refusing it revokes its whole family, and that
    revocation must be committed although the request fails."""

    persist_changes = True


class PermissionDeniedError(DomainError):
    """The caller is known but may not do this."""

    problem_type = "forbidden"


class InvalidFieldError(DomainError):
    """An input breaks a rule the contract cannot express (such as a field another requires)."""

    problem_type = "validation-error"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field
        self.pointer = f"/body/{field}"


class TooManyRequestsError(DomainError):
    """A rate limit was reached; the caller may try again after `retry_after` seconds."""

    problem_type = "too-many-requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class IdempotencyKeyReusedError(DomainError):
    """An Idempotency-Key came back with a different request than the one it first named."""

    problem_type = "idempotency-key-reused"


class ServiceUnavailableError(DomainError):
    """The service cannot answer now (its database is not ready); the client may retry later."""

    problem_type = "service-unavailable"

    def __init__(self, detail: str, *, retry_after: int, dependency: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.dependency = dependency
