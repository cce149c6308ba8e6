"""The domain's errors: one hierarchy, raised by services, knowing nothing of HTTP.

`taskapi.web.problems` maps each class to its problem type and status, in one table.
"""


class DomainError(Exception):
    """A request the domain refuses; `detail` is safe to show to the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    """The resource does not exist (or the caller may not know that it does)."""


class ConflictError(DomainError):
    """The request conflicts with the current state, such as a uniqueness rule."""
