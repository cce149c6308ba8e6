"""Idempotency-Key replay, for every operation whose spec declares the header.

`taskapi.web.dependencies` applies `replayed` around such an operation's handler, keyed by its
operationId; handlers know nothing of it. The reply is remembered as data (`StoredReply`, the
HTTP-shaped record) by the storage rules of `taskapi.services.idempotency`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.services import idempotency
from taskapi.web.responses import JSONReply, empty_reply, json_reply

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# The response headers a replay must repeat; the rest (request id, rate limits) are per request.
_REPLAYED_HEADERS = ("location", "etag")


@dataclass(frozen=True, kw_only=True)
class StoredReply:
    """What a replay repeats of the first reply: its status, the headers that describe the
    resource, and its JSON body (None for an empty one)."""

    status: int
    headers: dict[str, str]
    body: Any

    @classmethod
    def of(cls, response: Response) -> StoredReply:
        headers = {k: v for k, v in response.headers.items() if k in _REPLAYED_HEADERS}
        body = response.data if isinstance(response, JSONReply) else None
        return cls(status=response.status_code, headers=headers, body=body)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> StoredReply:
        return cls(status=data["status"], headers=dict(data["headers"]), body=data["body"])

    def to_data(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers, "body": self.body}

    def response(self) -> Response:
        if self.body is None:
            return empty_reply(status=self.status, headers=self.headers)
        return json_reply(self.body, status=self.status, headers=self.headers)


def replayed(
    *,
    session: Session,
    owner_id: uuid.UUID,
    operation: str,
    key: str,
    request_body: Any,
    respond: Callable[[], Response],
) -> Response:
    """`respond()`, remembered under `key`; or, when this key was seen, the reply it got."""
    claimed = idempotency.claim(
        session=session,
        owner_id=owner_id,
        operation=operation,
        key=key,
        request_fingerprint=idempotency.fingerprint(request_body),
    )
    if isinstance(claimed, idempotency.Remembered):
        return StoredReply.from_data(claimed.reply).response()
    response = respond()
    idempotency.remember(session=session, record=claimed, reply=StoredReply.of(response).to_data())
    return response
