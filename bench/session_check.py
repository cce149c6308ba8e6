"""What ending sessions at once costs each authenticated request: `python -m bench.session_check`.

Every request with a bearer token loads its user in one query; since sessions end at once, that
query also asks whether the token's session (its refresh-token family) is still alive. This
times, on a scratch database (SQLite, and PostgreSQL when TEST_DATABASE_URL names a server),
the lookup as it was (the user by primary key) against the lookup as it is, for a user whose
session has been refreshed many times (every rotation leaves a row in the family), and prints
microseconds per lookup, the median of several rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from taskapi.db import Database
from taskapi.migrations import upgrade_to_head
from taskapi.models import RefreshToken, User
from taskapi.services import auth
from taskapi.services.tokens import AccessClaims
from tools.live_service import scratch_database


def _seed(database: Database, *, rotations: int) -> AccessClaims:
    now = datetime.now(UTC)
    with database.transaction() as session:
        user = User(email="bench@example.com", name="Bench", age=30, password_hash="-")  # noqa: S106  # noqa: S106 - no password
        session.add(user)
        session.flush()
        family = uuid.uuid4()
        session.add_all(
            RefreshToken(
                user_id=user.id,
                family_id=family,
                token_hash=uuid.uuid4().hex * 2,
                expires_at=now + timedelta(days=30),
                used_at=now if n < rotations - 1 else None,
            )
            for n in range(rotations)
        )
    return AccessClaims(user_id=str(user.id), token_version=0, session_id=family)


def _per_call_us(database: Database, lookup: Callable[[Session], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        with database.reading() as session:
            lookup(session)
    return (time.perf_counter() - started) / calls * 1e6


def measure(url: str, *, calls: int, rounds: int, rotations: int) -> dict[str, float]:
    upgrade_to_head(url)
    database = Database.connect(url)
    try:
        claims = _seed(database, rotations=rotations)
        user_id = uuid.UUID(claims.user_id)
        lookups: dict[str, Callable[[Session], object]] = {
            "user by id (before)": lambda s: s.get(User, user_id),
            "user and live session (now)": lambda s: auth.authenticate(session=s, claims=claims),
        }
        results: dict[str, list[float]] = {name: [] for name in lookups}
        for _ in range(rounds):  # interleaved, so that drift hits both alike
            for name, lookup in lookups.items():
                results[name].append(_per_call_us(database, lookup, calls))
        return {name: statistics.median(values) for name, values in results.items()}
    finally:
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--rotations",
        type=int,
        default=2880,
        help="rows in the family (default: a refresh every 15 minutes for 30 days)",
    )
    args = parser.parse_args()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = {"sqlite": f"sqlite:///{folder / 'bench.sqlite3'}"}
        if server := os.environ.get("TEST_DATABASE_URL"):
            urls["postgresql"] = stack.enter_context(scratch_database(server, folder))
        print(f"{'backend':<12}{'lookup':<30}{'µs per request':>16}")
        for backend, url in urls.items():
            figures = measure(url, calls=args.calls, rounds=args.rounds, rotations=args.rotations)
            for name, micros in figures.items():
                print(f"{backend:<12}{name:<30}{micros:>16.1f}")


if __name__ == "__main__":
    main()
