"""Password hashing with argon2id; plain passwords go no further than this module."""

from __future__ import annotations

from argon2 import PasswordHasher, profiles

# RFC 9106's second recommended profile (argon2id, t=3, 64 MiB) is the production default.
# CHEAPEST exists for test suites, which would otherwise spend most of their time hashing.
PROFILES = {
    "RFC_9106_LOW_MEMORY": profiles.RFC_9106_LOW_MEMORY,
    "CHEAPEST": profiles.CHEAPEST,
}

_hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def use_password_profile(name: str) -> None:
    """Choose the hashing cost for this process; called once at start-up."""
    global _hasher  # noqa: PLW0603 - process-wide configuration, like logging
    _hasher = PasswordHasher.from_parameters(PROFILES[name])


def hash_password(password: str) -> str:
    return _hasher.hash(password)
