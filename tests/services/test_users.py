from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from taskapi.errors import ConflictError, InvalidFieldError, NotFoundError, PermissionDeniedError
from taskapi.models import User
from taskapi.services import users
from taskapi.services.auth import AuthPolicy
from taskapi.services.pagination import PageRequest
from tests.utils.factories import DEFAULT_PASSWORD, caller_of, create_user
from tests.utils.policies import auth_policy

NEW_PASSWORD = "a brand new passphrase"
CLIENT = "192.0.2.1"


@pytest.fixture
def policy() -> AuthPolicy:
    return auth_policy()


def test_create_stores_normalised_email_trimmed_name_and_user_role(session: Session) -> None:
    user = create_user(session, email="  Ada@Example.COM ", name="  Ada Lovelace  ")

    assert user.email == "ada@example.com"
    assert user.name == "Ada Lovelace"
    assert user.role == "user"
    assert user.created_at.tzinfo is not None


def test_create_stores_only_an_argon2id_hash_of_the_password(session: Session) -> None:
    user = create_user(session)

    assert user.password_hash.startswith("$argon2id$")
    assert DEFAULT_PASSWORD not in user.password_hash


def test_duplicate_email_is_a_conflict_regardless_of_case(session: Session) -> None:
    create_user(session, email="ada@example.com")

    with pytest.raises(ConflictError):
        create_user(session, email="ADA@example.com")


def test_conflict_leaves_the_session_usable(session: Session) -> None:
    create_user(session, email="ada@example.com")
    with pytest.raises(ConflictError):
        create_user(session, email="ada@example.com")

    assert create_user(session, email="grace@example.com").id is not None


@pytest.fixture
def admin(session: Session) -> User:
    user = create_user(session)
    return users.promote_to_admin(session=session, email=user.email)


def test_admin_gets_any_user_by_public_id(session: Session, admin: User) -> None:
    user = create_user(session)

    assert users.get(session=session, actor=caller_of(admin), user_id=str(user.id)) is user


def test_user_gets_themselves(session: Session) -> None:
    user = create_user(session)

    assert users.get(session=session, actor=caller_of(user), user_id=str(user.id)) is user


def test_user_may_not_get_another_user(session: Session) -> None:
    alice, bob = create_user(session), create_user(session)

    with pytest.raises(PermissionDeniedError):
        users.get(session=session, actor=caller_of(alice), user_id=str(bob.id))


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid", "", "1"])
def test_get_unknown_or_malformed_id_is_not_found(
    session: Session, admin: User, user_id: str
) -> None:
    with pytest.raises(NotFoundError):
        users.get(session=session, actor=caller_of(admin), user_id=user_id)


def test_only_admins_list_users(session: Session) -> None:
    with pytest.raises(PermissionDeniedError):
        users.get_all(
            session=session,
            actor=caller_of(create_user(session)),
            page=PageRequest(page=1, limit=10),
            sort=users.UserSort.EMAIL,
        )


def test_update_trims_name_and_changes_age(session: Session, policy: AuthPolicy) -> None:
    user = create_user(session)

    users.update(
        session=session,
        policy=policy,
        user=user,
        changes=users.UserUpdate(name="  Grace ", age=85),
        client=CLIENT,
    )

    assert (user.name, user.age) == ("Grace", 85)


def test_new_password_needs_the_current_one(session: Session, policy: AuthPolicy) -> None:
    user = create_user(session)

    with pytest.raises(InvalidFieldError) as missing:
        users.update(
            session=session,
            policy=policy,
            user=user,
            changes=users.UserUpdate(password=NEW_PASSWORD),
            client=CLIENT,
        )
    with pytest.raises(InvalidFieldError) as wrong:
        users.update(
            session=session,
            policy=policy,
            user=user,
            changes=users.UserUpdate(password=NEW_PASSWORD, current_password="wrong password!"),
            client=CLIENT,
        )

    assert missing.value.field == wrong.value.field == "current_password"


def test_password_change_revokes_every_token(session: Session, policy: AuthPolicy) -> None:
    user = create_user(session)
    version = user.token_version

    users.update(
        session=session,
        policy=policy,
        user=user,
        changes=users.UserUpdate(password=NEW_PASSWORD, current_password=DEFAULT_PASSWORD),
        client=CLIENT,
    )

    assert user.token_version == version + 1
    assert user.password_hash.startswith("$argon2id$")


def test_user_deletes_themselves_with_their_password_but_not_others(
    session: Session, policy: AuthPolicy
) -> None:
    alice, bob = create_user(session), create_user(session)

    with pytest.raises(PermissionDeniedError):
        users.delete(session=session, actor=caller_of(alice), user_id=str(bob.id))
    with pytest.raises(InvalidFieldError):
        users.delete_own_account(
            session=session, policy=policy, user=alice, current_password="wrong", client=CLIENT
        )
    users.delete_own_account(
        session=session, policy=policy, user=alice, current_password=DEFAULT_PASSWORD, client=CLIENT
    )

    assert session.get(User, alice.id) is None
    assert session.get(User, bob.id) is not None


def test_ids_are_time_ordered_uuids(session: Session) -> None:
    first, second = create_user(session), create_user(session)

    assert first.id.version == 7
    assert first.id < second.id


def test_get_all_pages_in_sort_order_without_overlap(session: Session, admin: User) -> None:
    created = [create_user(session, email=f"u{i:02}@example.com") for i in range(7)]

    seen = []
    for number in (1, 2, 3):
        page = users.get_all(
            session=session,
            actor=caller_of(admin),
            page=PageRequest(page=number, limit=3),
            sort=users.UserSort.EMAIL,
        )
        assert page.total == 8
        assert page.pages == 3
        seen.extend(u.email for u in page.items)

    assert seen == sorted(u.email for u in [*created, admin])


def test_get_all_descending_creation_breaks_ties_by_id(session: Session, admin: User) -> None:
    created = [create_user(session) for _ in range(4)]
    shared_instant = created[0].created_at
    for user in created:
        user.created_at = shared_instant
    session.flush()

    page = users.get_all(
        session=session,
        actor=caller_of(admin),
        page=PageRequest(page=1, limit=10),
        sort=users.UserSort.CREATED_AT_DESC,
    )

    tied = [u.id for u in page.items if u.created_at == shared_instant]
    assert tied == sorted((u.id for u in created), reverse=True)


def test_page_past_the_end_is_empty_but_counts_everything(session: Session, admin: User) -> None:
    page = users.get_all(
        session=session,
        actor=caller_of(admin),
        page=PageRequest(page=5, limit=10),
        sort=users.UserSort.EMAIL,
    )

    assert list(page.items) == []
    assert page.total == 1
