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
from starlette.types import Scope

YAML_MEDIA_TYPE = "application/yaml"  # RFC 9512
READ_METHODS = frozenset({"GET", "HEAD"})


class ServedSpec:
    """The two documents, answered to GET and HEAD (`taskapi.web.edge` asks it first)."""

    def __init__(self, *, text: str, document: dict[str, Any], base_path: str) -> None:
        as_json = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        self._documents = {
            f"{base_path}/openapi.yaml": (text.encode(), YAML_MEDIA_TYPE),
            f"{base_path}/openapi.json": (as_json.encode(), "application/json"),
        }

    def response(self, scope: Scope) -> Response | None:
        """The answer when the request reads one of the documents; None for any other."""
        served = self._documents.get(scope["path"])
        if served is None or scope["method"] not in READ_METHODS:
            return None
        content, media_type = served
        return Response(content, media_type=media_type)
