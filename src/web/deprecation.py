"""Deprecation announced from the spec: what the spec marks `deprecated: true` is answered with
`Deprecation` (RFC 9745) and, when the spec gives `x-sunset`, `Sunset` (RFC 8594), plus a `Link`
to the replacement (`rel="successor-version"`) when it gives `x-replaced-by`.

An operation marked deprecated adds them to every response; a deprecated parameter only to the
responses of requests that send it. `x-deprecated-at` (a date) says since when, as RFC 9745's
header carries a date; the breaking-change gate (tools/breaking_changes.py) then refuses to
remove anything that a release did not mark deprecated first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Scope

from taskapi.web.routes import HTTP_METHODS, base_path

PARAMETER_PLACES = ("query", "header")


@dataclass(frozen=True)
class Notice:
    """The headers one deprecated element adds to a response."""

    headers: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def of(cls, element: Mapping[str, Any], *, where: str) -> Notice:
        since = element.get("x-deprecated-at")
        if since is None:
            raise ValueError(f"{where} is deprecated without x-deprecated-at (the date since)")
        headers = [(b"deprecation", f"@{_epoch(since)}".encode())]
        if (sunset := element.get("x-sunset")) is not None:
            moment = datetime.combine(_day(sunset), time(23, 59, 59), tzinfo=UTC)
            headers.append((b"sunset", format_datetime(moment, usegmt=True).encode()))
        if (successor := element.get("x-replaced-by")) is not None:
            headers.append((b"link", f'<{successor}>; rel="successor-version"'.encode()))
        return cls(tuple(headers))


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _epoch(value: date | str) -> int:
    return int(datetime.combine(_day(value), time(), tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: Notice | None
    # (place, lower-cased name) -> the notice for sending that parameter
    parameters: Mapping[tuple[str, str], Notice]


def routes(spec: Mapping[str, Any]) -> list[_Route]:
    """Every operation that is deprecated or takes a deprecated parameter."""
    base = base_path(spec)
    found = []
    for template, item in spec.get("paths", {}).items():
        pattern = re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base + template)))
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = item[method]
            where = f"{method.upper()} {template}"
            notice = Notice.of(operation, where=where) if operation.get("deprecated") else None
            parameters = {
                (param["in"], param["name"].lower()): Notice.of(param, where=f"{where} {name}")
                for param in _parameters(spec, item, operation)
                if param.get("deprecated") and param["in"] in PARAMETER_PLACES
                for name in [param["name"]]
            }
            if notice or parameters:
                found.append(_Route(method.upper(), pattern, notice, parameters))
    return found


def _parameters(
    spec: Mapping[str, Any], item: Mapping[str, Any], operation: Mapping[str, Any]
) -> Iterable[Mapping[str, Any]]:
    for declared in [*item.get("parameters", []), *operation.get("parameters", [])]:
        yield _resolved(spec, declared)


def _resolved(spec: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """`node` with its local `$ref` followed (the spec has no remote ones)."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


class Deprecations:
    """The spec's deprecation notices, found for each request; `taskapi.web.edge` adds them to
    the request's answer (`announced`)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._routes = routes(spec)

    def notices(self, scope: Scope) -> list[Notice]:
        """What the answer to this request must announce (usually nothing)."""
        if not self._routes:
            return []
        route = next(
            (
                r
                for r in self._routes
                if r.method == scope["method"] and r.pattern.fullmatch(scope["path"])
            ),
            None,
        )
        if route is None:
            return []
        query = {name.lower() for name, _ in parse_qsl(scope["query_string"].decode("latin-1"))}
        headers = {name.decode("latin-1").lower() for name, _ in scope["headers"]}
        sent = {("query", name) for name in query} | {("header", name) for name in headers}
        notices = [route.operation] if route.operation else []
        return notices + [notice for key, notice in route.parameters.items() if key in sent]


def announced(
    headers: Sequence[tuple[bytes, bytes]], notices: list[Notice]
) -> list[tuple[bytes, bytes]]:
    """`headers` plus the notices': one Deprecation (the first notice's), one Sunset (the
    earliest, the one a client must meet), and every Link value joined into one Link header."""
    added: dict[bytes, list[bytes]] = {}
    for notice in notices:
        for name, value in notice.headers:
            added.setdefault(name, []).append(value)
    links = [value for name, value in headers if name.lower() == b"link"] + added.pop(b"link", [])
    kept = [(name, value) for name, value in headers if name.lower() != b"link"]
    if b"sunset" in added:
        added[b"sunset"] = [min(added[b"sunset"], key=lambda v: parsedate_to_datetime(v.decode()))]
    extra = [(name, values[0]) for name, values in added.items()]
    return kept + extra + ([(b"link", b", ".join(links))] if links else [])
