"""Bearer authentication for the spec's `bearerAuth` scheme, plus the headers every response
carries for safety, and the Swagger UI's own CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from connexion.security import BearerSecurityHandler
from starlette.types import Message

from taskapi.services.auth import AuthPolicy


def access_token_check(policy: AuthPolicy) -> Callable[[str], dict[str, Any]]:
    """The check Connexion calls for operations that need a bearer token, for `policy`'s
    tokens."""

    def verify_access_token(token: str) -> dict[str, Any]:
        """The token's signature and claims only (no I/O, so it can run on the event loop);
        the user is loaded, and checked still to exist, in the request's own transaction
        (`taskapi.web.dependencies`). Raises AuthenticationError, answered 401."""
        claims = policy.tokens.read_access_token(token)
        return {"sub": claims.user_id, "claims": claims}

    return verify_access_token


def checking_access_tokens(policy: AuthPolicy) -> dict[str, type[BearerSecurityHandler]]:
    """Connexion's security map, its bearer handler calling `access_token_check(policy)`.

    Connexion otherwise finds the check by a Python path in the spec (`x-bearerInfoFunc`) or in
    the BEARERINFO_FUNC environment variable; given in code, the served spec names no module
    and no environment can swap the check.
    """
    check = access_token_check(policy)

    class AccessTokenHandler(BearerSecurityHandler):  # type: ignore[misc]
        def _resolve_func(self, security_scheme: Mapping[str, Any]) -> Callable[..., Any]:
            return check

    return {"bearer": AccessTokenHandler}


def www_authenticate(reason: str | None, detail: str) -> str:
    """The RFC 6750 challenge for a 401: `invalid_request` for missing credentials,
    `invalid_token` for bad ones."""
    escaped = detail.replace("\\", "\\\\").replace('"', '\\"')
    code = reason or "invalid_request"
    return f'Bearer realm="taskapi", error="{code}", error_description="{escaped}"'


_NO_STORE = (b"cache-control", b"no-store")
_NO_SNIFF = (b"x-content-type-options", b"nosniff")
# JSON is never rendered, so nothing may load from it or frame it.
_LOCKED_DOWN_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def security_headers(response_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers every response carries: no caching (responses may hold credentials or personal
    data), no MIME sniffing, and a strict CSP for anything that is not an HTML page (the
    Swagger UI needs its own scripts)."""
    content_type = next((v for k, v in response_headers if k.lower() == b"content-type"), b"")
    extra = [_NO_STORE, _NO_SNIFF]
    if not content_type.startswith(b"text/html"):
        extra.append(_LOCKED_DOWN_CSP)
    present = {k.lower() for k, _ in response_headers}
    return [header for header in extra if header[0] not in present]


_CSP = b"content-security-policy"
_INLINE_CODE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)
_UI_POLICY = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self' {styles}; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def page_policy(page: bytes) -> bytes:
    """A CSP for an HTML page of our own: its assets from this origin only, and of inline
    code exactly the scripts and styles it holds (by SHA-256), so nothing injected runs."""
    hashes: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for kind, code in _INLINE_CODE.findall(page):
        digest = base64.b64encode(hashlib.sha256(code).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    return _UI_POLICY.format(
        scripts=" ".join(hashes[b"script"]), styles=" ".join(hashes[b"style"])
    ).encode()


class HeldPage:
    """An HTML page (the Swagger UI's, the only ones served) held back until its last body
    part, to be sent with the CSP of `page_policy`, which hashes the whole page."""

    def __init__(self, start: Message) -> None:
        self._start = start
        self._page = bytearray()

    @staticmethod
    def starts(message: Message) -> bool:
        """Whether this response start begins an HTML page."""
        return any(
            k.lower() == b"content-type" and v.startswith(b"text/html")
            for k, v in message.get("headers", [])
        )

    def add(self, body: Message) -> tuple[Message, Message] | None:
        """Takes one body part; after the last, the start (with its CSP) and the whole body."""
        self._page.extend(body.get("body", b""))
        if body.get("more_body"):
            return None
        page = bytes(self._page)
        headers = [(k, v) for k, v in self._start["headers"] if k.lower() != _CSP]
        self._start["headers"] = [*headers, (_CSP, page_policy(page))]
        return self._start, {"type": "http.response.body", "body": page}
