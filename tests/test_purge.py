"""`taskapi purge` deletes expired rows in bounded batches, and nothing that still counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from taskapi.cli import main
from taskapi.db import Database
from taskapi.models import IdempotentRequest, RefreshToken, User
from taskapi.services import users
from tests.utils.factories import user_payload

NOW = datetime.now(UTC)


@pytest.fixture
def owner(engine: Engine) -> Iterator[User]:
    """A committed user (purge commits for real); deleted, with its rows, at the end."""
    database = Database(engine)
    with database.transaction() as session:
        user = users.create(session=session, user_in=users.UserCreate(**user_payload()))
    yield user
    with database.transaction() as session:
        session.delete(session.get(User, user.id))


def token(owner: User, *, expires_in: timedelta, **fields: datetime) -> RefreshToken:
    return RefreshToken(
        user_id=owner.id,
        family_id=uuid.uuid4(),
        token_hash=uuid.uuid4().hex * 2,
        expires_at=NOW + expires_in,
        **fields,
    )


def replay(owner: User, *, age: timedelta) -> IdempotentRequest:
    return IdempotentRequest(
        owner_id=owner.id,
        operation="tasks.create_task",
        key=uuid.uuid4().hex,
        fingerprint="0" * 64,
        status=201,
        headers={},
        body={},
        created_at=NOW - age,
    )


def test_purge_deletes_expired_tokens_and_replays_in_batches_and_keeps_the_rest(
    engine: Engine, database_url: str, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept_tokens = [
        token(owner, expires_in=timedelta(days=1)),
        token(owner, expires_in=timedelta(days=1), used_at=NOW),  # reuse is still recognised
    ]
    doomed_tokens = [token(owner, expires_in=timedelta(seconds=-1)) for _ in range(5)] + [
        token(owner, expires_in=timedelta(days=1), revoked_at=NOW) for _ in range(2)
    ]
    kept_replay = replay(owner, age=timedelta(hours=23))
    doomed_replays = [replay(owner, age=timedelta(hours=25)) for _ in range(3)]
    with Database(engine).transaction() as session:
        session.add_all([*kept_tokens, *doomed_tokens, kept_replay, *doomed_replays])
    monkeypatch.setenv("DATABASE_URL", database_url)

    main(["purge", "--batch-size", "2"])

    with Database(engine).transaction() as session:
        tokens = set(
            session.scalars(select(RefreshToken.id).where(RefreshToken.user_id == owner.id))
        )
        replays = set(
            session.scalars(
                select(IdempotentRequest.id).where(IdempotentRequest.owner_id == owner.id)
            )
        )
        assert session.scalar(select(func.count()).select_from(User).where(User.id == owner.id))
    assert tokens == {t.id for t in kept_tokens}
    assert replays == {kept_replay.id}
