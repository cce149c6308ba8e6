"""What a request's answer was, noted where it is decided and read by the layers that report it.

The problem type is known only where a problem body is rendered (`taskapi.web.problems`), and an
unhandled exception only where it is caught; metrics and traces sit outside both. The outermost
of them begins an `Outcome` per request; the inner layers note on it through the context, so no
layer needs a reference to another.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(slots=True)
class Outcome:
    problem: str | None = None  # the slug of the problem type answered, if one was
    exception: BaseException | None = None  # the unhandled exception behind a 500, if any
    dependency: str | None = None  # the dependency that failed it: database, redis...
    handler_wait: float | None = None  # seconds it waited for a handler thread (a connection)


_outcome: ContextVar[Outcome | None] = ContextVar("outcome", default=None)


def begin_outcome() -> tuple[Outcome, Token[Outcome | None]]:
    outcome = Outcome()
    return outcome, _outcome.set(outcome)


def end_outcome(token: Token[Outcome | None]) -> None:
    _outcome.reset(token)


def current_outcome() -> Outcome | None:
    return _outcome.get()


def note_problem(slug: str) -> None:
    outcome = _outcome.get()
    if outcome is not None:
        outcome.problem = slug


def note_exception(exc: BaseException) -> None:
    outcome = _outcome.get()
    if outcome is not None:
        outcome.exception = exc


def note_dependency_failure(dependency: str) -> None:
    outcome = _outcome.get()
    if outcome is not None:
        outcome.dependency = dependency
