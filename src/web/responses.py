"""Replies with an explicit content type, and the paging envelope every list shares.

Handlers return a finished Starlette response, so Connexion never has to guess the content type
(a plain dict from an operation that declares both JSON and problem+json would be a 500 after
its side effects are committed: spec-first/connexion#1956).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import orjson
from starlette.responses import Response

from taskapi.services.cursors import Slice
from taskapi.services.pagination import Page

Item = TypeVar("Item")


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, the form the spec's `date-time` fields promise."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_reply(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def empty_reply(*, status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=dict(headers or {}))


def page_reply(
    page: Page[Item],
    *,
    path: str,
    query: Mapping[str, str | Sequence[str]],
    shape: Callable[[Item], Any],
) -> Response:
    """The page envelope (`mode: page`, `data`, `meta`, `links`) plus an RFC 8288 `Link` header.

    Links spell out the effective `limit` and every parameter in `query` (sort, filters), so a
    client following them sees the same list whatever defaults it relied on.
    """

    def link(number: int) -> str:
        params = {"page": str(number), "limit": str(page.limit), **query}
        return f"{path}?{urlencode(params, doseq=True)}"

    last = max(page.pages, 1)
    links = {
        "self": link(page.page),
        "first": link(1),
        "prev": link(min(page.page - 1, last)) if page.page > 1 else None,
        "next": link(page.page + 1) if page.page < page.pages else None,
        "last": link(last),
    }
    body = {
        "mode": "page",
        "data": [shape(item) for item in page.items],
        "meta": {"page": page.page, "limit": page.limit, "total": page.total, "pages": page.pages},
        "links": links,
    }
    return json_reply(body, headers={"Link": _link_header(links.items())})


def _link_header(links: Iterable[tuple[str, str | None]]) -> str:
    return ", ".join(f'<{href}>; rel="{rel}"' for rel, href in links if href and rel != "self")


def slice_reply(
    found: Slice[Item],
    *,
    path: str,
    query: Mapping[str, str | Sequence[str]],
    limit: int,
    cursor: str,
    shape: Callable[[Item], Any],
) -> Response:
    """One slice of a cursor walk: `mode: cursor`, `data`, `meta.limit`, and `links.self` /
    `links.next` (null at the end), with the next link in a `Link` header too."""

    def link(at: str) -> str:
        return f"{path}?{urlencode({**query, 'limit': str(limit), 'cursor': at}, doseq=True)}"

    next_link = link(found.next_cursor) if found.next_cursor is not None else None
    body = {
        "mode": "cursor",
        "data": [shape(item) for item in found.items],
        "meta": {"limit": limit},
        "links": {"self": link(cursor), "next": next_link},
    }
    headers = {"Link": f'<{next_link}>; rel="next"'} if next_link else {}
    return json_reply(body, headers=headers)
