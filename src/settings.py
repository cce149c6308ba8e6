"""The service's settings: one typed object, read from the environment once, at start-up.

Each setting is declared once, below, as a field with `setting(...)`: its variable (the field's
name in capitals unless given), its type (the annotation), its default, its check and its
description. `Settings.from_env` reads, parses and checks every declared field from that alone,
and the README's settings table is `settings_table()` (tests/test_settings.py holds the two
equal). A bad value fails the boot with a message
naming the variable, rather than the first request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import secrets
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limits import parse_many

from taskapi.private_files import create_private_file
from taskapi.services.throttle import STORE_TIMEOUT_MS

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PASSWORD_HASH_PROFILES = ("RFC_9106_LOW_MEMORY", "CHEAPEST")
MAX_PORT = 65535
MIN_SECRET_LENGTH = 32
DEFAULT_DATA_DIR = Path("var")

# A check takes the parsed value and says what is wrong with it ("must be at least 1"), or None.
Check = Callable[[Any], str | None]


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@dataclass(frozen=True)
class Declaration:
    """What the table says of one setting, beside its name, type and default."""

    description: str
    variable: str | None
    check: Check | None
    # How the README shows the default, where the value itself would mislead ("generated").
    shown_default: str | None
    # Applied to the raw text before it is parsed by type (LOG_LEVEL is read in any case).
    normalise: Callable[[str], str] | None


def setting(
    default: Any,
    description: str,
    *,
    variable: str | None = None,
    check: Check | None = None,
    shown_default: str | None = None,
    normalise: Callable[[str], str] | None = None,
) -> Any:
    """Declare a setting: a dataclass field carrying its Declaration."""
    declaration = Declaration(description, variable, check, shown_default, normalise)
    return field(default=default, metadata={"setting": declaration})


def at_least(minimum: int) -> Check:
    def check(value: int) -> str | None:
        if value >= minimum:
            return None
        return "must be at least 1" if minimum == 1 else "must not be negative (0: none)"

    return check


def between(low: int, high: int) -> Check:
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def one_of(choices: tuple[str, ...]) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def secret_when_set(value: str) -> str | None:
    if value and len(value) < MIN_SECRET_LENGTH:
        return f"must be at least {MIN_SECRET_LENGTH} characters"
    return None


def rate_limits(value: str) -> str | None:
    try:
        parse_many(value)
    except ValueError:
        return "is not a rate limit such as 10/minute"
    return None


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """How one process talks to a server database."""

    # Few connections, each kept open once made (docs/deployment.md, "Sizing", has the figures).
    # A worker runs one handler thread per connection, and its threads share one GIL.
    size: int = setting(
        4,
        "database connections kept per worker (PostgreSQL); also each worker's number of handler"
        " threads, on SQLite too",
        variable="DB_POOL_SIZE",
        check=at_least(1),
    )
    # No overflow: the pool closes an overflow connection as soon as it comes back, and busy
    # handler threads keep asking for more than `size`, so the pool would reconnect all the time.
    max_overflow: int = setting(
        0,
        "extra connections a worker may open under load, closed as soon as they come back (size"
        " plus overflow is also each worker's number of handler threads; see"
        " docs/deployment.md before raising it)",
        variable="DB_MAX_OVERFLOW",
        check=at_least(0),
    )
    timeout: int = setting(
        5,
        "seconds a request waits for a free connection, then 503",
        variable="DB_POOL_TIMEOUT",
        check=at_least(1),
    )
    # Servers and proxies kill idle connections; replacing them first avoids meeting a dead one.
    recycle: int = setting(
        1800, "seconds after which a connection is replaced", variable="DB_POOL_RECYCLE"
    )
    # An outage fails fast instead of holding the request.
    connect_timeout: int = setting(
        3,
        "seconds to reach the database, then 503",
        variable="DB_CONNECT_TIMEOUT",
        check=at_least(1),
    )
    # The server cancels longer statements, and the client closes a connection that has not
    # answered a statement (or a commit) within it plus CLIENT_GRACE_MS: a silent link, a
    # stuck proxy (SocketWatchdog). 0 (never) for migrations and scripts; the service's own
    # default is in `Settings.pool`.
    statement_timeout_ms: int = setting(
        0,
        "the server cancels longer statements (503); the client closes a connection whose"
        " statement, commit or rollback has had no answer for this long plus 1 s (a silent link"
        " or stuck proxy: 503); `0`: never",
        variable="DB_STATEMENT_TIMEOUT_MS",
        check=at_least(0),
    )

    @property
    def capacity(self) -> int:
        """How many connections the pool lends out at most."""
        return self.size + self.max_overflow


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8000, "port to listen on", check=between(1, MAX_PORT))
    # `setting` returns a field (ruff cannot tell), and a Path is immutable.
    data_dir: Path = setting(  # noqa: RUF009
        DEFAULT_DATA_DIR, "folder (git-ignored) for the embedded SQLite database"
    )
    # Empty means the embedded default, an SQLite file in DATA_DIR (`__post_init__`).
    database_url: str = setting(
        "",
        "SQLAlchemy URL of the database",
        shown_default="`sqlite:///var/taskapi.sqlite3`",
    )
    log_level: str = setting(
        "INFO",
        "`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`",
        check=one_of(LOG_LEVELS),
        normalise=str.upper,
    )
    max_body_bytes: int = setting(
        1024 * 1024,
        "larger request bodies are refused with 413, without being read",
        check=at_least(1),
    )
    max_header_bytes: int = setting(
        32 * 1024,
        "request header fields larger than this in all (names and values) are refused with 431;"
        " a head past this + 64 KiB is not read at all (400, connection closed)",
        check=at_least(1),
    )
    max_header_count: int = setting(
        100, "requests with more header fields are refused with 431", check=at_least(1)
    )
    validate_responses: bool = setting(
        False, "check every response against the spec (on in tests; costly)"
    )
    password_hash_profile: str = setting(
        "RFC_9106_LOW_MEMORY",
        "argon2id cost; `CHEAPEST` exists for test suites only",
        check=one_of(PASSWORD_HASH_PROFILES),
    )
    # Empty means: generate one once and keep it in DATA_DIR, so workers and restarts agree.
    jwt_secret: str = setting(
        "",
        "signing key of access tokens (32+ characters); unset, one is generated once into"
        " `DATA_DIR/jwt-secret`, so workers and restarts agree",
        check=secret_when_set,
        shown_default="generated",
    )
    jwt_issuer: str = setting("taskapi", "the `iss` claim issued and required")
    jwt_audience: str = setting("taskapi", "the `aud` claim issued and required")
    access_token_ttl_seconds: int = setting(
        15 * 60, "lifetime of an access token", check=at_least(1)
    )
    refresh_token_ttl_seconds: int = setting(
        30 * 24 * 3600, "lifetime of a refresh token (30 days)", check=at_least(1)
    )
    rate_limit: str = setting(
        "600/minute", "requests per client address, on every route", check=rate_limits
    )
    # Failed password checks (README, "Password guessing").
    login_rate_limit_per_account_and_client: str = setting(
        "5/minute;20/hour;100/day",
        "failed password checks (login, `current_password`) per account and client address;"
        ' each window passed makes the next wait longer ("Password guessing")',
        check=rate_limits,
    )
    login_rate_limit_per_client: str = setting(
        "20/minute;100/hour;500/day",
        "failed password checks per client address, across accounts",
        check=rate_limits,
    )
    login_rate_limit_per_account: str = setting(
        "50/hour;100/day",
        "failed password checks per account, across addresses: past it, only addresses that"
        " have not failed on the account may try (once)",
        check=rate_limits,
    )
    refresh_rate_limit_per_client: str = setting(
        "30/minute", "`POST /auth/refresh` per client address", check=rate_limits
    )
    registration_rate_limit_per_client: str = setting(
        "20/hour", "`POST /users` per client address", check=rate_limits
    )
    refresh_grace_seconds: int = setting(
        10,
        "a used refresh token presented again this soon by the same client gets the same new"
        " refresh token (two tabs refreshing at once); later, it revokes its family",
        check=at_least(0),
    )
    redis_url: str = setting(
        "",
        "e.g. `redis://127.0.0.1:6379/0`: rate limits shared by every worker and machine; unset,"
        " each process counts in memory",
    )
    redis_timeout_ms: int = setting(
        STORE_TIMEOUT_MS,
        "deadline of every Redis call (to connect, and for each reply). Past it, or while Redis"
        " is refused, the general limit lets requests through"
        " (`taskapi_rate_limit_unchecked_total`, one WARNING per outage) and login/refresh"
        " answer 503 with `Retry-After: 5`; Redis is left alone for 1 s after a failure, then"
        " tried again",
        check=at_least(1),
    )
    cors_origins: tuple[str, ...] = setting(
        (), "comma-separated origins allowed cross-origin; unset, CORS is off"
    )
    workers: int = setting(
        1, "worker processes of `taskapi serve` (`--workers N` overrides it)", check=at_least(1)
    )
    graceful_timeout: int = setting(
        20, "seconds in-flight requests get to finish after SIGTERM", check=at_least(0)
    )
    drain_seconds: int = setting(
        0,
        "seconds after SIGTERM during which `/v1/readyz` answers 503 while requests are still"
        " served, before the listener closes: set it above your load balancer's time to take a"
        ' failing replica out (docs/deployment.md, "Scale-out")',
        check=at_least(0),
    )
    keep_alive_timeout: int = setting(
        5, "seconds an idle kept-alive connection stays open", check=at_least(1)
    )
    request_read_timeout: int = setting(
        10,
        "seconds a client has to send a whole request (headers and body); slower ones are"
        " disconnected",
        check=at_least(1),
    )
    forwarded_allow_ips: tuple[str, ...] = setting(
        (),
        "comma-separated proxy addresses or networks whose `X-Forwarded-For`/`-Proto` are"
        " believed; unset, nobody's",
    )
    # The database pool, per worker process; the service cancels statements after 5 s.
    pool: PoolSettings = field(default=PoolSettings(statement_timeout_ms=5_000))
    handler_queue_timeout: int = setting(
        3,
        "seconds a request waits for one of its worker's handler threads (busy, or held by a"
        " stalled database), then 503 with `Retry-After: 1`; the request is then never run",
        check=at_least(1),
    )
    metrics_enabled: bool = setting(
        True, "`false`: no metrics are kept and `GET /v1/metrics` answers 404"
    )
    metrics_token: str = setting(
        "",
        "when set (32+ characters), `GET /v1/metrics` needs `Authorization: Bearer <token>`."
        " Required (the boot fails without it) while metrics are on and the service is reachable"
        " beyond loopback: `HOST` not a loopback address, or `FORWARDED_ALLOW_IPS` set (a proxy"
        " forwards others' requests)",
        check=secret_when_set,
    )
    docs_ui_enabled: bool = setting(
        True,
        "`false`: no Swagger UI at `/v1/ui/` (the spec stays at `/v1/openapi.json` and `.yaml`)",
    )
    # prometheus-client's own variable: one file per worker in it, summed at each scrape.
    prometheus_multiproc_dir: str = setting(
        "",
        "with several workers: a folder where each writes its metrics, so every scrape sums them"
        " all",
    )

    def __post_init__(self) -> None:
        if not self.database_url:
            default_url = f"sqlite:///{self.data_dir / 'taskapi.sqlite3'}"
            object.__setattr__(self, "database_url", default_url)
        for declared in declared_settings(self):
            check = declared.declaration.check
            complaint = check(declared.value) if check else None
            if complaint:
                # The value itself is left out: it may be a secret.
                raise SettingsError(f"{declared.variable} {complaint}")
        if self.metrics_enabled and not self.metrics_token and self.reachable_beyond_loopback:
            raise SettingsError(
                "METRICS_TOKEN must be set when HOST is not a loopback address or a proxy"
                " forwards to the service (FORWARDED_ALLOW_IPS); or set METRICS_ENABLED=false"
            )

    @property
    def reachable_beyond_loopback(self) -> bool:
        """Whether anyone but this machine's own processes can send requests: the service
        listens on another address, or a trusted proxy forwards others' requests to it."""
        if self.forwarded_allow_ips:
            return True
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True  # a host name: whatever it resolves to may be public

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every declared setting from `environ` (the process's environment by default)."""
        return cls(**_read(os.environ if environ is None else environ, cls))

    def signing_secret(self) -> str:
        """JWT_SECRET, or the secret generated once into DATA_DIR (created on first use)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            candidate = self.data_dir / f".jwt-secret.{os.getpid()}"
            create_private_file(candidate, secrets.token_urlsafe(48).encode("ascii"))
            # link() is atomic and refuses to overwrite: when several workers start at once,
            # exactly one secret wins and every worker reads that one.
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
            candidate.unlink()
        return path.read_text(encoding="ascii").strip()


@dataclass(frozen=True)
class DeclaredSetting:
    """One row of the table: a field of Settings, or of a group inside it (`pool`), with its
    value in the object it was read from."""

    variable: str
    kind: Any
    value: Any
    declaration: Declaration


def declared_settings(source: Any = None) -> Iterator[DeclaredSetting]:
    """Every setting, in the order declared, with its value in `source` (default: the
    defaults). A group's defaults are those its parent gives it."""
    source = Settings() if source is None else source
    hints = typing.get_type_hints(type(source))
    for member in dataclasses.fields(source):
        value = getattr(source, member.name)
        declaration = member.metadata.get("setting")
        if declaration is None:  # a group of settings, such as the pool's
            yield from declared_settings(value)
            continue
        variable = declaration.variable or member.name.upper()
        yield DeclaredSetting(variable, hints[member.name], value, declaration)


def _read(env: Mapping[str, str], cls: type[Any]) -> dict[str, Any]:
    """The settings of `cls` that `env` holds, parsed; each group whole, from its defaults."""
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for member in dataclasses.fields(cls):
        declaration: Declaration | None = member.metadata.get("setting")
        if declaration is None:
            group = _read(env, hints[member.name])
            group_defaults: Any = member.default
            values[member.name] = dataclasses.replace(group_defaults, **group)
            continue
        variable = declaration.variable or member.name.upper()
        raw = env.get(variable)
        if raw is not None:
            if declaration.normalise:
                raw = declaration.normalise(raw)
            values[member.name] = _parse(hints[member.name], variable, raw)
    return values


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(kind: Any, variable: str, raw: str) -> Any:
    if kind is bool:
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise SettingsError(f"{variable} must be true or false, not {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{variable} must be a whole number, not {raw!r}") from None
    if kind == tuple[str, ...]:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return kind(raw)  # str, Path


def settings_table() -> str:
    """The README's table of settings, as the declarations give it."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for declared in declared_settings():
        shown = declared.declaration.shown_default or _shown(declared.value)
        rows.append(f"| `{declared.variable}` | {shown} | {declared.declaration.description} |")
    return "\n".join(rows) + "\n"


def _shown(default: Any) -> str:
    if default in ("", ()):
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"
