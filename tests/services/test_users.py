from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from taskapi.errors import ConflictError, NotFoundError
from taskapi.services import users
from taskapi.services.pagination import PageRequest
from tests.utils.factories import DEFAULT_PASSWORD, create_user


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


def test_get_returns_the_user_by_public_id(session: Session) -> None:
    user = create_user(session)

    assert users.get(session=session, user_id=str(user.id)) is user


@pytest.mark.parametrize("user_id", [str(uuid.uuid4()), "not-a-uuid", "", "1"])
def test_get_unknown_or_malformed_id_is_not_found(session: Session, user_id: str) -> None:
    with pytest.raises(NotFoundError):
        users.get(session=session, user_id=user_id)


def test_ids_are_time_ordered_uuids(session: Session) -> None:
    first, second = create_user(session), create_user(session)

    assert first.id.version == 7
    assert first.id < second.id


def test_get_all_pages_in_sort_order_without_overlap(session: Session) -> None:
    created = [create_user(session, email=f"u{i:02}@example.com") for i in range(7)]

    seen = []
    for number in (1, 2, 3):
        page = users.get_all(
            session=session, page=PageRequest(page=number, limit=3), sort=users.UserSort.EMAIL
        )
        assert page.total == 7
        assert page.pages == 3
        seen.extend(u.email for u in page.items)

    assert seen == sorted(u.email for u in created)


def test_get_all_descending_creation_breaks_ties_by_id(session: Session) -> None:
    created = [create_user(session) for _ in range(4)]
    shared_instant = created[0].created_at
    for user in created:
        user.created_at = shared_instant
    session.flush()

    page = users.get_all(
        session=session, page=PageRequest(page=1, limit=10), sort=users.UserSort.CREATED_AT_DESC
    )

    assert [u.id for u in page.items] == sorted((u.id for u in created), reverse=True)


def test_page_past_the_end_is_empty_but_counts_everything(session: Session) -> None:
    create_user(session)

    page = users.get_all(
        session=session, page=PageRequest(page=5, limit=10), sort=users.UserSort.EMAIL
    )

    assert list(page.items) == []
    assert page.total == 1
