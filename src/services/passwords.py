"""Password hashing with argon2id; plain passwords go no further than this module."""

from __future__ import annotations

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106's second recommended profile (argon2id, t=3, 64 MiB) is the production default.
# CHEAPEST exists for test suites, which would otherwise spend most of their time hashing.
PROFILES = {
    "RFC_9106_LOW_MEMORY": profiles.RFC_9106_LOW_MEMORY,
    "CHEAPEST": profiles.CHEAPEST,
}

_hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
# Checked against when the account does not exist, so that a wrong email costs as much time
# as a wrong password and response times do not reveal which accounts exist.
_dummy_hash = _hasher.hash("no account has this password")


def use_password_profile(name: str) -> None:
    """Choose the hashing cost for this process; called once at start-up."""
    global _hasher, _dummy_hash  # noqa: PLW0603 - process-wide configuration, like logging
    _hasher = PasswordHasher.from_parameters(PROFILES[name])
    _dummy_hash = _hasher.hash("no account has this password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash, spends the same time and answers False."""
    try:
        return _hasher.verify(password_hash or _dummy_hash, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
