"""The service's settings: one typed object, read from the environment once, at start-up.

A bad value fails the boot with a message naming the variable, rather than the first request.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from limits import parse_many

from taskapi.db import PoolSettings
from taskapi.private_files import create_private_file
from taskapi.services.throttle import STORE_TIMEOUT_MS

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PASSWORD_HASH_PROFILES = ("RFC_9106_LOW_MEMORY", "CHEAPEST")
MAX_PORT = 65535
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")
    database_url: str = ""
    log_level: str = "INFO"
    max_body_bytes: int = 1024 * 1024
    # Header fields of one request: their names and values in all, and how many (431 past).
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    validate_responses: bool = False
    password_hash_profile: str = "RFC_9106_LOW_MEMORY"
    # Empty means: generate one once and keep it in DATA_DIR, so workers and restarts agree.
    jwt_secret: str = ""
    jwt_issuer: str = "taskapi"
    jwt_audience: str = "taskapi"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # `limits` notation, such as "300/minute" or "10 per second; 1000 per hour".
    rate_limit: str = "600/minute"
    # Failed password checks (README, "Password guessing"): per account and address, with
    # delays that grow window by window; per address across accounts; per account across
    # addresses, a ceiling past which only addresses that have not failed on it may try.
    login_rate_limit_per_account_and_client: str = "5/minute;20/hour;100/day"
    login_rate_limit_per_client: str = "20/minute;100/hour;500/day"
    login_rate_limit_per_account: str = "50/hour;100/day"
    refresh_rate_limit_per_client: str = "30/minute"
    registration_rate_limit_per_client: str = "20/hour"
    refresh_grace_seconds: int = 10
    redis_url: str = ""
    # Deadline of every call to Redis: to connect, and for each reply.
    redis_timeout_ms: int = STORE_TIMEOUT_MS
    cors_origins: tuple[str, ...] = ()
    # Serving (`taskapi serve`): uvicorn's own supervisor runs the workers.
    workers: int = 1
    graceful_timeout: int = 20
    # Seconds /v1/readyz fails after SIGTERM before the listener closes (0: close at once).
    drain_seconds: int = 0
    keep_alive_timeout: int = 5
    request_read_timeout: int = 10
    # Addresses (or CIDR networks) whose X-Forwarded-For/-Proto are believed; empty: nobody's.
    forwarded_allow_ips: tuple[str, ...] = ()
    # The database pool, per worker process (PostgreSQL; SQLite ignores the pool settings).
    db_pool_size: int = PoolSettings.size
    db_max_overflow: int = PoolSettings.max_overflow
    db_pool_timeout: int = PoolSettings.timeout
    db_pool_recycle: int = PoolSettings.recycle
    db_connect_timeout: int = PoolSettings.connect_timeout
    db_statement_timeout_ms: int = 5_000
    # Seconds a request waits for one of its worker's handler threads, then 503.
    handler_queue_timeout: int = 3
    # Metrics: `GET /v1/metrics` needs `Authorization: Bearer <token>` when set, and the token
    # must be set whenever the service can be reached from beyond loopback (README).
    metrics_enabled: bool = True
    metrics_token: str = ""
    # The interactive documentation (Swagger UI at /v1/ui/); the spec itself is always served.
    docs_ui_enabled: bool = True
    # prometheus-client's own variable: one file per worker in it, summed at each scrape.
    prometheus_multiproc_dir: str = ""

    def __post_init__(self) -> None:
        if not self.database_url:
            # The embedded default: an SQLite file in the git-ignored data folder.
            default_url = f"sqlite:///{self.data_dir / 'taskapi.sqlite3'}"
            object.__setattr__(self, "database_url", default_url)
        if not 0 < self.port <= MAX_PORT:
            raise SettingsError(f"PORT must be between 1 and 65535, not {self.port}")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        if self.password_hash_profile not in PASSWORD_HASH_PROFILES:
            raise SettingsError(
                f"PASSWORD_HASH_PROFILE must be one of {', '.join(PASSWORD_HASH_PROFILES)}"
            )
        if self.jwt_secret and len(self.jwt_secret) < MIN_SECRET_LENGTH:
            raise SettingsError(f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        for name in ("access_token_ttl_seconds", "refresh_token_ttl_seconds"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.upper()} must be a positive number of seconds")
        for name in (
            "rate_limit",
            "login_rate_limit_per_account_and_client",
            "login_rate_limit_per_account",
            "login_rate_limit_per_client",
            "refresh_rate_limit_per_client",
            "registration_rate_limit_per_client",
        ):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                raise SettingsError(
                    f"{name.upper()} is not a rate limit such as 10/minute"
                ) from None
        if self.max_body_bytes < 1:
            raise SettingsError("MAX_BODY_BYTES must be a positive number of bytes")
        self._check_operations()

    def _check_operations(self) -> None:
        for name in (
            "workers",
            "max_header_bytes",
            "max_header_count",
            "keep_alive_timeout",
            "request_read_timeout",
            "db_pool_size",
            "db_pool_timeout",
            "db_connect_timeout",
            "redis_timeout_ms",
            "handler_queue_timeout",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.upper()} must be at least 1")
        for name in (
            "graceful_timeout",
            "drain_seconds",
            "db_max_overflow",
            "db_statement_timeout_ms",
            "refresh_grace_seconds",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name.upper()} must not be negative (0: none)")
        if self.metrics_token and len(self.metrics_token) < MIN_SECRET_LENGTH:
            raise SettingsError(f"METRICS_TOKEN must be at least {MIN_SECRET_LENGTH} characters")
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

    @property
    def pool(self) -> PoolSettings:
        return PoolSettings(
            size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            timeout=self.db_pool_timeout,
            recycle=self.db_pool_recycle,
            connect_timeout=self.db_connect_timeout,
            statement_timeout_ms=self.db_statement_timeout_ms,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            host=env.get("HOST", defaults.host),
            port=_int(env, "PORT", defaults.port),
            data_dir=Path(env.get("DATA_DIR", str(defaults.data_dir))),
            database_url=env.get("DATABASE_URL", ""),
            log_level=env.get("LOG_LEVEL", defaults.log_level).upper(),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes),
            max_header_bytes=_int(env, "MAX_HEADER_BYTES", defaults.max_header_bytes),
            max_header_count=_int(env, "MAX_HEADER_COUNT", defaults.max_header_count),
            validate_responses=_bool(env, "VALIDATE_RESPONSES", defaults.validate_responses),
            password_hash_profile=env.get("PASSWORD_HASH_PROFILE", defaults.password_hash_profile),
            jwt_secret=env.get("JWT_SECRET", ""),
            jwt_issuer=env.get("JWT_ISSUER", defaults.jwt_issuer),
            jwt_audience=env.get("JWT_AUDIENCE", defaults.jwt_audience),
            access_token_ttl_seconds=_int(
                env, "ACCESS_TOKEN_TTL_SECONDS", defaults.access_token_ttl_seconds
            ),
            refresh_token_ttl_seconds=_int(
                env, "REFRESH_TOKEN_TTL_SECONDS", defaults.refresh_token_ttl_seconds
            ),
            rate_limit=env.get("RATE_LIMIT", defaults.rate_limit),
            login_rate_limit_per_account_and_client=env.get(
                "LOGIN_RATE_LIMIT_PER_ACCOUNT_AND_CLIENT",
                defaults.login_rate_limit_per_account_and_client,
            ),
            login_rate_limit_per_account=env.get(
                "LOGIN_RATE_LIMIT_PER_ACCOUNT", defaults.login_rate_limit_per_account
            ),
            login_rate_limit_per_client=env.get(
                "LOGIN_RATE_LIMIT_PER_CLIENT", defaults.login_rate_limit_per_client
            ),
            refresh_rate_limit_per_client=env.get(
                "REFRESH_RATE_LIMIT_PER_CLIENT", defaults.refresh_rate_limit_per_client
            ),
            registration_rate_limit_per_client=env.get(
                "REGISTRATION_RATE_LIMIT_PER_CLIENT", defaults.registration_rate_limit_per_client
            ),
            refresh_grace_seconds=_int(
                env, "REFRESH_GRACE_SECONDS", defaults.refresh_grace_seconds
            ),
            redis_url=env.get("REDIS_URL", ""),
            redis_timeout_ms=_int(env, "REDIS_TIMEOUT_MS", defaults.redis_timeout_ms),
            cors_origins=_list(env, "CORS_ORIGINS"),
            workers=_int(env, "WORKERS", defaults.workers),
            graceful_timeout=_int(env, "GRACEFUL_TIMEOUT", defaults.graceful_timeout),
            drain_seconds=_int(env, "DRAIN_SECONDS", defaults.drain_seconds),
            keep_alive_timeout=_int(env, "KEEP_ALIVE_TIMEOUT", defaults.keep_alive_timeout),
            request_read_timeout=_int(env, "REQUEST_READ_TIMEOUT", defaults.request_read_timeout),
            forwarded_allow_ips=_list(env, "FORWARDED_ALLOW_IPS"),
            db_pool_size=_int(env, "DB_POOL_SIZE", defaults.db_pool_size),
            db_max_overflow=_int(env, "DB_MAX_OVERFLOW", defaults.db_max_overflow),
            db_pool_timeout=_int(env, "DB_POOL_TIMEOUT", defaults.db_pool_timeout),
            db_pool_recycle=_int(env, "DB_POOL_RECYCLE", defaults.db_pool_recycle),
            db_connect_timeout=_int(env, "DB_CONNECT_TIMEOUT", defaults.db_connect_timeout),
            db_statement_timeout_ms=_int(
                env, "DB_STATEMENT_TIMEOUT_MS", defaults.db_statement_timeout_ms
            ),
            handler_queue_timeout=_int(
                env, "HANDLER_QUEUE_TIMEOUT", defaults.handler_queue_timeout
            ),
            metrics_enabled=_bool(env, "METRICS_ENABLED", defaults.metrics_enabled),
            metrics_token=env.get("METRICS_TOKEN", ""),
            docs_ui_enabled=_bool(env, "DOCS_UI_ENABLED", defaults.docs_ui_enabled),
            prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR", ""),
        )

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


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")
