"""What the spec says about routes, for answers Connexion's router cannot give by itself."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def base_path(spec: Mapping[str, Any]) -> str:
    """The path every route starts with: the first server's, its variables at their defaults
    (`{scheme}://{host}:{port}/v1` gives `/v1`), as Connexion's router reads it."""
    servers = spec.get("servers") or [{"url": ""}]
    server = servers[0]
    defaults = {name: var["default"] for name, var in server.get("variables", {}).items()}
    url: str = server["url"].format(**defaults)
    return urlsplit(url).path.rstrip("/")


class AllowedMethods:
    """The methods each path of the spec accepts, for the `Allow` header of a 405.

    Connexion routes every (path, method) pair separately, so its 405 names only one of them.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        base = base_path(spec)
        self._routes: list[tuple[re.Pattern[str], list[str]]] = []
        for template, operations in spec.get("paths", {}).items():
            # Path parameters match one segment, as Connexion's router matches them.
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base + template))
            methods = [m.upper() for m in HTTP_METHODS if m in operations]
            self._routes.append((re.compile(pattern), methods))

    def for_path(self, path: str) -> list[str]:
        for pattern, methods in self._routes:
            if pattern.fullmatch(path):
                return methods
        return []
