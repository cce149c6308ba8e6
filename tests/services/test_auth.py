from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from taskapi.db import Database
from taskapi.errors import AuthenticationError, StolenTokenError, TooManyRequestsError
from taskapi.models import User
from taskapi.services import auth, users
from taskapi.services.tokens import AccessClaims
from tests.utils.factories import DEFAULT_PASSWORD, caller_of, create_user
from tests.utils.policies import ISSUER, auth_policy

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def policy() -> auth.AuthPolicy:
    return auth_policy()


def log_in(session: Session, policy: auth.AuthPolicy, user: User, **kw: str) -> auth.TokenPair:
    return auth.login(
        session=session,
        policy=policy,
        email=kw.get("email", user.email),
        password=kw.get("password", DEFAULT_PASSWORD),
        client=kw.get("client", "192.0.2.1"),
    )


def test_login_issues_an_access_token_for_the_user(
    session: Session, policy: auth.AuthPolicy
) -> None:
    user = create_user(session)

    pair = log_in(session, policy, user)

    claims = ISSUER.read_access_token(pair.access_token)
    assert (claims.user_id, claims.token_version) == (str(user.id), user.token_version)
    assert pair.expires_in == 900
    assert pair.refresh_token.startswith("rt_")


def test_login_accepts_the_email_in_any_case(session: Session, policy: auth.AuthPolicy) -> None:
    user = create_user(session, email="ada@example.com")

    assert log_in(session, policy, user, email=" ADA@example.com")


@pytest.mark.parametrize(
    ("email", "password"),
    [("nobody@example.com", DEFAULT_PASSWORD), (None, "wrong password!!")],
    ids=["unknown-email", "wrong-password"],
)
def test_wrong_email_and_wrong_password_fail_the_same_way(
    session: Session, policy: auth.AuthPolicy, email: str | None, password: str
) -> None:
    user = create_user(session)

    with pytest.raises(AuthenticationError) as error:
        log_in(session, policy, user, email=email or user.email, password=password)

    assert error.value.detail == "The email or password is wrong."


def test_failed_logins_are_limited_per_account_and_client(
    session: Session, policy: auth.AuthPolicy
) -> None:
    user = create_user(session)
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            log_in(session, policy, user, password="wrong password!!")

    with pytest.raises(TooManyRequestsError) as error:
        log_in(session, policy, user)

    assert 0 < error.value.retry_after <= 60
    assert log_in(session, policy, user, client="192.0.2.2")


def test_successful_logins_are_not_counted(session: Session, policy: auth.AuthPolicy) -> None:
    user = create_user(session)

    for _ in range(10):
        log_in(session, policy, user)


def test_failed_logins_are_limited_per_client_across_accounts(
    session: Session, policy: auth.AuthPolicy
) -> None:
    accounts = [create_user(session) for _ in range(6)]
    for user in accounts[:5]:
        with pytest.raises(AuthenticationError):
            log_in(session, policy, user, password="wrong password!!")

    with pytest.raises(TooManyRequestsError):
        log_in(session, policy, accounts[5])


def test_refresh_rotates_the_token(session: Session, policy: auth.AuthPolicy) -> None:
    first = log_in(session, policy, create_user(session))

    second = auth.refresh(
        session=session, policy=policy, refresh_token=first.refresh_token, client="c"
    )

    assert second.refresh_token != first.refresh_token
    assert auth.refresh(
        session=session, policy=policy, refresh_token=second.refresh_token, client="c"
    )


def test_reusing_a_refresh_token_revokes_its_whole_family(
    session: Session, policy: auth.AuthPolicy
) -> None:
    first = log_in(session, policy, create_user(session))
    second = auth.refresh(
        session=session, policy=policy, refresh_token=first.refresh_token, client="c"
    )

    with pytest.raises(StolenTokenError):
        auth.refresh(session=session, policy=policy, refresh_token=first.refresh_token, client="x")
    with pytest.raises(AuthenticationError):
        auth.refresh(session=session, policy=policy, refresh_token=second.refresh_token, client="c")


def test_refresh_presented_again_by_its_client_within_the_grace_gets_the_same_token(
    session: Session, policy: auth.AuthPolicy
) -> None:
    first = log_in(session, policy, create_user(session))

    pairs = [
        auth.refresh(session=session, policy=policy, refresh_token=first.refresh_token, client="c")
        for _ in range(2)
    ]

    assert pairs[0].refresh_token == pairs[1].refresh_token
    assert auth.refresh(
        session=session, policy=policy, refresh_token=pairs[1].refresh_token, client="c"
    )


def test_refresh_reuse_after_the_grace_revokes_the_family(session: Session) -> None:
    policy = auth_policy(refresh_grace_seconds=0)
    first = log_in(session, policy, create_user(session))
    auth.refresh(session=session, policy=policy, refresh_token=first.refresh_token, client="c")

    with pytest.raises(StolenTokenError):
        auth.refresh(session=session, policy=policy, refresh_token=first.refresh_token, client="c")


def test_stolen_token_refusal_is_marked_to_keep_the_revocation() -> None:
    assert StolenTokenError.persist_changes
    assert not AuthenticationError.persist_changes


def test_logout_revokes_the_refresh_token(session: Session, policy: auth.AuthPolicy) -> None:
    user = create_user(session)
    pair = log_in(session, policy, user)

    claims = ISSUER.read_access_token(pair.access_token)
    auth.logout(
        session=session, caller=caller_of(user), claims=claims, refresh_token=pair.refresh_token
    )

    with pytest.raises(AuthenticationError):
        auth.refresh(session=session, policy=policy, refresh_token=pair.refresh_token, client="c")


def test_authenticate_refuses_tokens_from_before_a_password_change(
    session: Session, policy: auth.AuthPolicy
) -> None:
    user = create_user(session)
    claims = ISSUER.read_access_token(log_in(session, policy, user).access_token)
    users.update(
        session=session,
        policy=policy,
        user=user,
        changes=users.UserUpdate(password=NEW_PASSWORD, current_password=DEFAULT_PASSWORD),
        client="192.0.2.1",
    )

    with pytest.raises(AuthenticationError):
        auth.authenticate(session=session, claims=claims)


def test_authenticate_refuses_tokens_of_deleted_users(
    session: Session, policy: auth.AuthPolicy
) -> None:
    user = create_user(session)
    claims = ISSUER.read_access_token(log_in(session, policy, user).access_token)
    users.delete_own_account(
        session=session, policy=policy, user=user, current_password=DEFAULT_PASSWORD, client="c"
    )

    with pytest.raises(AuthenticationError):
        auth.authenticate(session=session, claims=claims)


@pytest.fixture
def committed_claims(engine: Engine, policy: auth.AuthPolicy) -> Iterator[AccessClaims]:
    """The claims of a live session of a user committed for real (row locks are taken on
    rows other transactions can see), deleted at the end."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite writers take turns instead")
    database = Database(engine)
    with database.transaction() as session:
        user = create_user(session)
        claims = ISSUER.read_access_token(log_in(session, policy, user).access_token)
    yield claims
    with database.transaction() as session:
        session.execute(delete(User).where(User.id == user.id))


def test_writers_of_one_account_lock_it_against_deletion_not_against_each_other(
    engine: Engine, committed_claims: AccessClaims
) -> None:
    database = Database(engine)
    with database.transaction() as first:
        auth.authenticate(session=first, claims=committed_claims, for_writing=True)
        with database.transaction() as second:
            second.execute(text("SET LOCAL lock_timeout = '200ms'"))
            auth.authenticate(session=second, claims=committed_claims, for_writing=True)
        with engine.connect() as deleting:
            deleting.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                deleting.execute(delete(User).where(User.id == uuid.UUID(committed_claims.user_id)))


def test_changes_of_one_account_take_turns_and_the_later_finds_its_token_revoked(
    engine: Engine, committed_claims: AccessClaims
) -> None:
    database = Database(engine)
    with database.transaction() as first:
        account = auth.account(session=first, claims=committed_claims, for_writing=True)
        with pytest.raises(OperationalError, match="lock timeout"):
            _change_account(database, committed_claims, lock_timeout_ms=200)
        account.token_version += 1  # as a password change does

    with pytest.raises(AuthenticationError):
        _change_account(database, committed_claims)


def _change_account(
    database: Database, claims: AccessClaims, *, lock_timeout_ms: int | None = None
) -> None:
    with database.transaction() as session:
        if lock_timeout_ms is not None:
            session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout_ms}ms'"))
        auth.account(session=session, claims=claims, for_writing=True)


def _forge(claims: dict[str, object], *, key: str = ISSUER.secret, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(uuid.uuid4()),
        "ver": 0,
        "sid": str(uuid.uuid4()),
        "iss": "taskapi",
        "aud": "taskapi",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    claims.update(overrides)
    return claims


@pytest.mark.parametrize(
    "token",
    [
        _forge(_claims(exp=int((datetime.now(UTC) - timedelta(minutes=1)).timestamp()))),
        _forge(_claims(), key="another-secret-of-at-least-thirty-two-chars"),
        _forge(_claims(iss="someone-else")),
        _forge(_claims(aud="another-api")),
        _forge({k: v for k, v in _claims().items() if k != "ver"}),
        _forge({k: v for k, v in _claims().items() if k != "sid"}),
        _forge(_claims(sid="not-a-uuid")),
        _forge(_claims(), algorithm="HS512"),
        jwt.encode(_claims(), None, algorithm="none"),
        "not.a.jwt",
    ],
    ids=[
        "expired",
        "wrong-key",
        "wrong-issuer",
        "wrong-audience",
        "no-version",
        "no-session",
        "bad-session",
        "hs512",
        "alg-none",
        "garbage",
    ],
)
def test_bad_access_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationError):
        ISSUER.read_access_token(token)
