"""The one logging setup: JSON lines on stdout, request ids on every record, secrets redacted.

Called once at start-up (`configure_logging`). uvicorn's loggers go through the same handler;
its plain-text access log is off because `taskapi.web.request_context` writes a structured one.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from taskapi.request_id import current_request_id

REDACTED = "[REDACTED]"

# Keys whose values are secrets wherever they appear: in `extra=`, nested dicts, or in text.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "current_password",
        "new_password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "cookie",
        "set-cookie",
        "secret",
        "api_key",
    }
)

_KEY_PATTERN = "|".join(re.escape(k) for k in sorted(SENSITIVE_KEYS, key=len, reverse=True))
# `"password": "..."`, `password=...`, `Authorization: Bearer ...` in free text.
_SECRET_IN_TEXT = re.compile(
    rf"""(?P<key>["']?(?:{_KEY_PATTERN})["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;&}}]+(?:\s+[^\s,;&}}]+)?)""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact_text(text: str) -> str:
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group('key')}{REDACTED}", text)


def redact_value(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactSecrets(logging.Filter):
    """Removes secrets from the message, its arguments and every extra field of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        for key in set(vars(record)) - _STANDARD_ATTRS:
            setattr(record, key, redact_value(key, getattr(record, key)))
        return True


class AddRequestId(logging.Filter):
    """The request id, and the trace and span ids when the request is traced
    (taskapi.web.tracing), so that a log line leads to its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        span = trace.get_current_span().get_span_context()
        if span.trace_flags.sampled:  # ids of a trace that exists
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return True


class RedactingJsonFormatter(JsonFormatter):
    """Tracebacks can quote local values (a password in an SQL parameter, say): redact them too."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's own name
        return redact_text(str(super().formatException(ei)))


def configure_logging(level: int | str = logging.INFO, *, stream: IO[str] | None = None) -> None:
    """Send every logger's records to `stream` (stdout by default) as redacted JSON lines."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(
        RedactingJsonFormatter(
            "{message}{levelname}{name}",
            style="{",
            timestamp=True,
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        )
    )
    # Filters on the handler see records from every logger, propagated ones included.
    handler.addFilter(AddRequestId())
    handler.addFilter(RedactSecrets())

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

    for name in ("uvicorn", "uvicorn.error"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    # Replaced by the structured access record written per request.
    logging.getLogger("uvicorn.access").disabled = True
    # The audit trail (taskapi.services.audit) is a security record, and the metrics of login
    # failures are counted from it: LOG_LEVEL quiets the rest, never it.
    logging.getLogger("taskapi.audit").setLevel(logging.INFO)
    # Connexion logs every 4xx it raises at WARNING; the access record already tells the story.
    logging.getLogger("connexion").setLevel(max(logging.ERROR, root.level))
