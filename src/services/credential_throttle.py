"""The one throttle in front of every password check: login, and `current_password` on
changing or deleting an account (README, "Password guessing").

It counts failures, never successes, on three budgets at once:

- per (account, client address): a few quick retries for a typo, then delays that grow with
  each window (the limits of one setting, such as a minute, then an hour, then a day);
- per client address across accounts: one address cannot spray many accounts;
- per account across addresses: a ceiling on distributed guessing. Past it the account is not
  locked: an address that has not failed on it still gets its attempt (so the owner, on a clean
  address, logs in on the first try), while every address that has failed waits.

Addresses are bucketed by `client_bucket` (IPv6 by /64).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem

from taskapi.errors import TooManyRequestsError
from taskapi.services import audit
from taskapi.services.throttle import Throttle, client_bucket


@dataclass(frozen=True, kw_only=True)
class CredentialLimits:
    per_account_and_client: Sequence[RateLimitItem]
    per_client: Sequence[RateLimitItem]
    per_account: Sequence[RateLimitItem]


class CredentialThrottle:
    def __init__(self, throttle: Throttle, limits: CredentialLimits) -> None:
        self._throttle = throttle
        self._limits = limits

    def check(self, *, account: str, client: str) -> None:
        """Raise TooManyRequestsError (with the seconds to wait) when a password check for
        `account` from `client` must wait; count nothing."""
        bucket = client_bucket(client)
        limits = self._limits
        wait = max(
            self._throttle.wait_for(limits.per_account_and_client, "pw-pair", account, bucket),
            self._throttle.wait_for(limits.per_client, "pw-client", bucket),
        )
        if not wait and self._has_failed(account, bucket):
            wait = self._throttle.wait_for(self._limits.per_account, "pw-account", account)
        if wait:
            audit.record(
                "credentials.delayed",
                outcome="refused",
                account=account,
                client=client,
                retry_after=wait,
            )
            raise TooManyRequestsError(
                f"Too many failed attempts; try again in {wait} seconds.", retry_after=wait
            )

    def failed(self, *, account: str, client: str) -> None:
        """Count a wrong password for `account` from `client` on every budget."""
        bucket = client_bucket(client)
        self._throttle.count(self._limits.per_account_and_client, "pw-pair", account, bucket)
        self._throttle.count(self._limits.per_client, "pw-client", bucket)
        self._throttle.count(self._limits.per_account, "pw-account", account)

    def succeeded(self, *, account: str, client: str) -> None:
        """The right password: this address's typos on this account are forgiven."""
        self._throttle.forget(
            self._limits.per_account_and_client, "pw-pair", account, client_bucket(client)
        )

    def _has_failed(self, account: str, bucket: str) -> bool:
        longest = self._limits.per_account_and_client[-1]
        return self._throttle.has_counted(longest, "pw-pair", account, bucket)
