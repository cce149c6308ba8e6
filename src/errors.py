"""The domain's errors: one hierarchy, raised by services, knowing nothing of HTTP.

`taskapi.web.problems` maps each class to its problem type and status, in one table.
"""

from typing import ClassVar


class DomainError(Exception):
    """A request the domain refuses; `detail` is safe to show to the client."""

    # Most refusals leave no trace: the unit of work rolls back. The few whose refusal is
    # itself a change to keep (revoking a stolen token family) set this.
    persist_changes: ClassVar[bool] = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    """The resource does not exist (or the caller may not know that it does)."""


class ConflictError(DomainError):
    """The request conflicts with the current state, such as a uniqueness rule."""


class PreconditionFailedError(DomainError):
    """The caller's idea of the resource's version is stale; it must read it again first."""


class InvalidCursorError(DomainError):
    """A page cursor was altered, or was issued for another listing (sort, filters or owner)."""


class AuthenticationError(DomainError):
    """No valid credentials: `reason` is an RFC 6750 error code (`invalid_token`, ...)."""

    def __init__(self, detail: str, *, reason: str = "invalid_token") -> None:
        super().__init__(detail)
        self.reason = reason


class StolenTokenError(AuthenticationError):
    """A refresh token was presented twice. Refusing it revokes its whole family, and that
    revocation must be committed although the request fails."""

    persist_changes = True


class PermissionDeniedError(DomainError):
    """The caller is known but may not do this."""


class InvalidFieldError(DomainError):
    """An input breaks a rule the contract cannot express (such as a field another requires)."""

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class TooManyRequestsError(DomainError):
    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class IdempotencyKeyReusedError(DomainError):
    """An Idempotency-Key came back with a different request than the one it first named."""


class ServiceUnavailableError(DomainError):
    """The service cannot answer now (its database is not ready); the client may retry later."""

    def __init__(self, detail: str, *, retry_after: int, dependency: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        # The dependency that failed (`redis`), for the metrics of dependency failures.
        self.dependency = dependency
