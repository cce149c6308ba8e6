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


class Passwords:
    """Hashing at one cost profile (PASSWORD_HASH_PROFILE), built once at start-up and handed
    to the services that need it (in the AuthPolicy)."""

    def __init__(self, profile: str = "RFC_9106_LOW_MEMORY") -> None:
        self._hasher = PasswordHasher.from_parameters(PROFILES[profile])
        # Checked against when the account does not exist, so that a wrong email costs as much
        # time as a wrong password and response times do not reveal which accounts exist.
        self._dummy_hash = self._hasher.hash("no account has this password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash, spends the same time and answers False."""
        try:
            matches = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matches and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


# zxcvbn's own bound: its matching grows faster than the length, and 72 characters stay
# within a bounded time (README, "Password policy", has it); what lies beyond only adds strength.
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
