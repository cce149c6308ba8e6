"""Conditional requests (RFC 9110 section 13): ETags from versions, If-Match, If-None-Match."""

from __future__ import annotations

from taskapi.errors import PreconditionFailedError


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header insists on; None when there is none (or `*`).

    An ETag we never issued cannot match any version, so it fails the precondition too.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip()
    if len(tag) >= 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdecimal() and tag.isascii():  # noqa: PLR2004
        return int(tag[1:-1])
    raise PreconditionFailedError("If-Match does not name a version of this resource.")


def still_fresh(if_none_match: str | None, current: str) -> bool:
    """Whether `If-None-Match` names the current ETag (weakly compared), so 304 can answer."""
    if if_none_match is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or current in candidates
