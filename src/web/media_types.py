"""Media types read as RFC 9110 (section 8.3.1) says: type, subtype and parameter names are
case-insensitive, parameters follow `;` with optional white space around it.

Connexion compares media types case-sensitively in places (its body-validator lookup and its
JSON detection), so `Content-Type: APPLICATION/JSON` once skipped body validation and reached
the handler as bytes. Request validation reads the header here, once, into a canonical form.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MediaType:
    essence: str  # `type/subtype`, lower-cased
    parameters: dict[str, str] = field(default_factory=dict)  # names lower-cased

    @property
    def charset(self) -> str | None:
        charset = self.parameters.get("charset")
        return charset.lower() if charset else None


def parse_media_type(header: str) -> MediaType:
    """The media type of a Content-Type value; what cannot be read as a parameter is ignored
    (the essence alone decides whether an operation accepts the body)."""
    essence, *parameters = header.split(";")
    named: dict[str, str] = {}
    for parameter in parameters:
        name, equals, value = parameter.partition("=")
        name = name.strip().lower()
        if name and equals and name not in named:
            named[name] = value.strip().removeprefix('"').removesuffix('"')
    return MediaType(essence.strip().lower(), named)
