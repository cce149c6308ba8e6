"""The spec served as written: `{base}/openapi.yaml` is spec/openapi.yaml byte for byte, and
`{base}/openapi.json` the same document as JSON, with its `$ref`s, components and extensions.

Connexion would serve the document it built instead (every `$ref` inlined, consumed `x-`
extensions dropped, the servers replaced by a relative base path), from which generators
invent dozens of inline model names.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

YAML_MEDIA_TYPE = "application/yaml"  # RFC 9512
READ_METHODS = frozenset({"GET", "HEAD"})


class ServedSpec:
    """Answers GET and HEAD for the two documents; passes every other request on."""

    def __init__(
        self, app: ASGIApp, *, text: str, document: dict[str, Any], base_path: str
    ) -> None:
        self.app = app
        as_json = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        self._documents = {
            f"{base_path}/openapi.yaml": (text.encode(), YAML_MEDIA_TYPE),
            f"{base_path}/openapi.json": (as_json.encode(), "application/json"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self._documents.get(scope["path"]) if scope["type"] == "http" else None
        if served is None or scope["method"] not in READ_METHODS:
            await self.app(scope, receive, send)
            return
        content, media_type = served
        await Response(content, media_type=media_type)(scope, receive, send)
