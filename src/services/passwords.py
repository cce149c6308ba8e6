"""Password hashing with argon2id; plain passwords go no further than this module."""

from __future__ import annotations

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn  # type: ignore[import-untyped] # no stubs published

from taskapi.errors import InvalidFieldError

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


# zxcvbn's own bound: its matching grows faster than the length, and 72 characters take at
# most ~40 ms (README, "Password policy"); what lies beyond only adds strength.
_STRENGTH_CHECKED_CHARACTERS = 72
# zxcvbn's "safely unguessable" (about 10^8 guesses or more): offline attacks on a slow hash.
_MINIMUM_SCORE = 3
# Shorter names ("Al") occur inside strong passphrases by chance; zxcvbn still weighs them.
_NAME_CONTAINED_MIN = 4


def check_policy(password: str, *, field: str, email: str, name: str) -> None:
    """Refuse a new password that is only white space, is or holds the account's email or
    name, or is common or easy to guess (zxcvbn's dictionaries of common passwords, words
    and names, with the email and name as further words). Raises InvalidFieldError naming
    `field` and the reason. The length bounds are the spec's (checked before we run)."""
    folded = password.casefold()
    email, name = email.strip().casefold(), name.strip().casefold()
    if not password.strip():
        reason = "must not be only white space"
    elif email in folded or email.partition("@")[0] == folded.strip():
        reason = "must not be or contain the account's email address"
    elif folded.strip() == name or (len(name) >= _NAME_CONTAINED_MIN and name in folded):
        reason = "must not be or contain the account's name"
    else:
        verdict = zxcvbn(
            password[:_STRENGTH_CHECKED_CHARACTERS],
            user_inputs=[email, email.partition("@")[0], name],
            max_length=_STRENGTH_CHECKED_CHARACTERS,
        )
        if verdict["score"] >= _MINIMUM_SCORE:
            return
        warning = verdict["feedback"]["warning"].rstrip(".")
        reason = "is too easy to guess" + (f" ({warning})" if warning else "")
        reason += "; a few uncommon words together make a strong password"
    raise InvalidFieldError(f"The password {reason}.", field=field)


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
