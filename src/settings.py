"""The service's settings: one typed object, read from the environment once, at start-up.

A bad value fails the boot with a message naming the variable, rather than the first request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PASSWORD_HASH_PROFILES = ("RFC_9106_LOW_MEMORY", "CHEAPEST")
MAX_PORT = 65535


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
    validate_responses: bool = False
    password_hash_profile: str = "RFC_9106_LOW_MEMORY"

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
        if self.max_body_bytes < 1:
            raise SettingsError("MAX_BODY_BYTES must be a positive number of bytes")

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

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
            validate_responses=_bool(env, "VALIDATE_RESPONSES", defaults.validate_responses),
            password_hash_profile=env.get("PASSWORD_HASH_PROFILE", defaults.password_hash_profile),
        )

    @property
    def log_level_number(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]


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
