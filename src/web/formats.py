"""The string formats the spec uses, checked as the formats define them.

jsonschema's stock `email` check accepts any string containing `@`, so an address made of
control characters and accented letters passed request validation, was stored, and came back
in a response that breaks the spec's own `format: email`. Here `email` means an RFC 5321
mailbox (`Local-part@Domain`, ASCII only; internationalised addresses are the separate
`idn-email` format).
"""

from __future__ import annotations

import datetime
import ipaddress
import re

from jsonschema import Draft4Validator, FormatChecker

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*"  # Dot-string
    r'|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'  # Quoted-string
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# RFC 5321 section 4.5.3.1: the longest local part and domain a server must accept.
_MAX_LOCAL_PART = 64
_MAX_DOMAIN = 253


def _is_address_literal(literal: str) -> bool:
    """`[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 section 4.1.3)."""
    ip_type: type[ipaddress.IPv4Address | ipaddress.IPv6Address] = ipaddress.IPv4Address
    if literal.startswith("IPv6:"):
        ip_type, literal = ipaddress.IPv6Address, literal.removeprefix("IPv6:")
    try:
        ip_type(literal)
    except ValueError:
        return False
    return True


def is_email(value: object) -> bool:
    """Whether `value` is an RFC 5321 mailbox; values that are not strings are not checked."""
    if not isinstance(value, str):
        return True
    local_part, at, domain = value.rpartition("@")
    if not at or len(local_part) > _MAX_LOCAL_PART or len(domain) > _MAX_DOMAIN:
        return False
    if not _LOCAL_PART.fullmatch(local_part):
        return False
    if domain.startswith("[") and domain.endswith("]"):
        return _is_address_literal(domain[1:-1])
    return _DOMAIN.fullmatch(domain) is not None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_date(value: object) -> bool:
    """Whether `value` is an RFC 3339 full-date on the calendar (`2026-02-30` is not)."""
    if not isinstance(value, str):
        return True
    if not _ISO_DATE.fullmatch(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft4Validator.FORMAT_CHECKER.checkers)
    checker.checks("email")(is_email)
    checker.checks("date", raises=())(is_date)
    return checker


# Draft 4's checks, with `email` replaced and OpenAPI's `date` added.
FORMAT_CHECKER = _format_checker()
