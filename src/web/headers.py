"""Bounds on a request's header fields: how many, and how many bytes in all (names and
values), checked before anything else reads them; and header values shortened for the logs.

Past either bound the answer is 431 (RFC 6585), so that a megabyte of cookies or ten thousand
header lines cost no more than a glance.
"""

from __future__ import annotations

from collections.abc import Sequence

# A logged header value (User-Agent, Content-Type in a detail) is cut to this many characters.
LOGGED_HEADER_CHARS = 200


def shortened(value: str | None) -> str | None:
    """`value`, cut to LOGGED_HEADER_CHARS characters with an ellipsis if it was longer."""
    if value is None or len(value) <= LOGGED_HEADER_CHARS:
        return value
    return value[: LOGGED_HEADER_CHARS - 1] + "…"


def over_limits(
    headers: Sequence[tuple[bytes, bytes]], *, max_bytes: int, max_count: int
) -> str | None:
    """Why `headers` are over the bounds, for the client; None when they are within them."""
    if len(headers) > max_count:
        return f"The request has {len(headers)} header fields; at most {max_count} are accepted."
    size = sum(len(name) + len(value) for name, value in headers)
    if size > max_bytes:
        return f"The request's header fields take {size} bytes; at most {max_bytes} are accepted."
    return None
