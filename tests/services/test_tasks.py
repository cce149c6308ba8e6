from __future__ import annotations

import base64
import gc
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from taskapi.errors import (
    ConflictError,
    InvalidCursorError,
    InvalidFieldError,
    NotFoundError,
    PreconditionFailedError,
)
from taskapi.models import PRIORITY_RANKS, Task, TaskCount, User
from taskapi.services import cursors, pagination, task_counts, task_listings, tasks
from taskapi.services.pagination import PageRequest
from taskapi.services.task_listings import TaskFilters, TaskListing, TaskSort
from tests.utils.factories import create_task, create_user

SECRET = b"a test secret, not the real one"
EVERYTHING = TaskFilters()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def owner(session: Session) -> User:
    return create_user(session)


@pytest.fixture
def stranger(session: Session) -> User:
    return create_user(session)


def _listed(session: Session, owner: User, filters: TaskFilters = EVERYTHING, **kw: Any) -> list:
    sort = kw.get("sort", TaskSort.CREATED_AT)
    page = task_listings.get_all(
        session=session,
        listing=TaskListing(owner_id=owner.id, filters=filters, sort=sort),
        page=PageRequest(page=1, limit=100),
    )
    return list(page.items)


def test_listings_built_for_one_request_leave_no_statement_behind(
    session: Session, owner: User
) -> None:
    create_task(session, owner=owner, title="Alpha")
    gc.collect()
    kept = len(pagination._PAGED), len(cursors._SLICES)

    for n in range(50):
        filters = replace(EVERYTHING, q=f"alpha {n}")
        _listed(session, owner, filters)
        listing = TaskListing(owner_id=owner.id, filters=filters, sort=TaskSort.CREATED_AT)
        task_listings.get_all_after(
            session=session, listing=listing, limit=1, after=None, secret=SECRET
        )
    gc.collect()

    assert (len(pagination._PAGED), len(cursors._SLICES)) == kept


def _walk(session: Session, owner: User, sort: TaskSort, limit: int) -> list[Task]:
    """Every slice of a cursor listing, from the first to the one without a next cursor."""
    seen: list[Task] = []
    cursor = None
    while True:
        piece = task_listings.get_all_after(
            session=session,
            listing=TaskListing(owner_id=owner.id, filters=EVERYTHING, sort=sort),
            limit=limit,
            after=cursor,
            secret=SECRET,
        )
        seen.extend(piece.items)
        if piece.next_cursor is None:
            return seen
        cursor = piece.next_cursor


def _first_slice(session: Session, owner: User, **kw: Any) -> tasks.Slice[Task]:
    arguments: dict[str, Any] = {
        "owner_id": owner.id,
        "filters": EVERYTHING,
        "sort": TaskSort.CREATED_AT,
        "limit": 2,
        "after": None,
        "secret": SECRET,
        **kw,
    }
    listing = TaskListing(**{name: arguments.pop(name) for name in ("owner_id", "filters", "sort")})
    return task_listings.get_all_after(session=session, listing=listing, **arguments)


# --- create, get ------------------------------------------------------------------------------


def test_create_answers_the_task_exactly_as_a_later_read_finds_it(
    session: Session, owner: User
) -> None:
    task_in = tasks.TaskCreate(
        title=" Ship it ",
        status="done",
        priority="urgent",
        tags=["a", "b"],
        description="Notes",
        due_date=date(2026, 12, 31),
    )

    created = tasks.create(session=session, owner_id=owner.id, task_in=task_in)
    read = tasks.get(session=session, owner_id=owner.id, task_id=str(created.id))

    assert created.completed_at is not None
    assert {field: getattr(read, field) for field in asdict(created)} == asdict(created)


def test_create_stores_a_trimmed_title_and_the_defaults(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner, title="  Write the report  ")

    assert task.title == "Write the report"
    assert (task.status, task.priority, task.priority_rank) == ("todo", "medium", 1)
    assert (task.description, task.due_date, task.tags) == (None, None, [])
    assert task.version == 1
    assert task.completed_at is None
    assert task.id.version == 7
    assert task.created_at.tzinfo is not None


def test_title_may_be_200_characters_once_trimmed(session: Session, owner: User) -> None:
    assert create_task(session, owner=owner, title=f"  {'x' * 200}  ").title == "x" * 200


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_title_blank_or_too_long_once_trimmed_is_refused(
    session: Session, owner: User, title: str
) -> None:
    with pytest.raises(InvalidFieldError):
        create_task(session, owner=owner, title=title)


@pytest.mark.parametrize(
    "tags",
    [
        [f"t{i}" for i in range(11)],
        ["home", "home"],
        ["Home"],
        ["-home"],
        ["a" * 33],
        ["with space"],
    ],
)
def test_tags_breaking_their_rules_are_refused(
    session: Session, owner: User, tags: list[str]
) -> None:
    with pytest.raises(InvalidFieldError):
        create_task(session, owner=owner, tags=tags)


def test_ten_well_formed_tags_are_kept_in_order(session: Session, owner: User) -> None:
    tags = [f"tag-{i}" for i in range(9, -1, -1)]

    assert create_task(session, owner=owner, tags=tags).tags == tags


def test_task_created_done_is_completed(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner, status="done")

    assert task.completed_at is not None


def test_get_returns_the_owners_task(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner)

    found = tasks.get(session=session, owner_id=owner.id, task_id=str(task.id))

    assert (found.id, found.owner_id, found.title, found.version) == (
        task.id,
        owner.id,
        task.title,
        1,
    )


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid", "", "1"])
def test_get_unknown_or_malformed_id_is_not_found(
    session: Session, owner: User, task_id: str
) -> None:
    with pytest.raises(NotFoundError):
        tasks.get(session=session, owner_id=owner.id, task_id=task_id)


# --- owner isolation --------------------------------------------------------------------------

_WRITES: dict[str, Callable[..., object]] = {
    "get": tasks.get,
    "update": lambda **kw: tasks.update(
        **kw, changes=tasks.TaskUpdate(title="Mine now"), expected_version=None
    ),
    "delete": lambda **kw: tasks.delete(**kw, expected_version=None),
}


@pytest.mark.parametrize("operation", sorted(_WRITES))
def test_another_owners_task_is_not_found(
    session: Session, owner: User, stranger: User, operation: str
) -> None:
    theirs = create_task(session, owner=stranger, title="Theirs")

    with pytest.raises(NotFoundError, match="No task has this id"):
        _WRITES[operation](session=session, owner_id=owner.id, task_id=str(theirs.id))
    assert (theirs.title, theirs.version) == ("Theirs", 1)


def test_lists_hold_only_the_owners_tasks(session: Session, owner: User, stranger: User) -> None:
    mine = [create_task(session, owner=owner) for _ in range(3)]
    create_task(session, owner=stranger)

    assert {t.id for t in _listed(session, owner)} == {t.id for t in mine}
    walked = _walk(session, owner, TaskSort.CREATED_AT, limit=2)
    assert {t.id for t in walked} == {t.id for t in mine}


def test_deleting_the_owner_deletes_their_tasks(session: Session, owner: User) -> None:
    create_task(session, owner=owner)
    owner_id = owner.id
    session.delete(owner)
    session.flush()
    session.expunge_all()

    count = select(func.count()).select_from(Task).where(Task.owner_id == owner_id)
    assert session.scalar(count) == 0


def _counted(session: Session, owner: User) -> int:
    return session.scalar(select(func.count()).select_from(Task).where(Task.owner_id == owner.id))


def test_kept_task_count_follows_creates_and_deletes(
    session: Session, owner: User, stranger: User
) -> None:
    made = [create_task(session, owner=owner) for _ in range(4)]
    create_task(session, owner=stranger)
    tasks.delete(session=session, owner_id=owner.id, task_id=str(made[0].id), expected_version=None)
    session.flush()

    assert task_counts.get(session=session, owner_id=owner.id) == _counted(session, owner) == 3
    assert task_counts.get(session=session, owner_id=stranger.id) == 1


def test_a_create_writes_its_task_and_count_in_one_statement_on_postgresql(
    session: Session, owner: User
) -> None:
    # A listener sends every statement through Core, where it is seen. PostgreSQL takes the
    # insert and the count in one statement (one round trip); SQLite, which cannot, in two.
    engine = session.get_bind().engine
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        tasks.create(session=session, owner_id=owner.id, task_in=tasks.TaskCreate(title="One"))
    finally:
        event.remove(engine, "before_cursor_execute", note)

    assert len(sent) == (1 if engine.dialect.name == "postgresql" else 2)
    assert task_counts.get(session=session, owner_id=owner.id) == _counted(session, owner) == 1


def test_a_create_that_fails_counts_nothing(
    session: Session, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = create_task(session, owner=owner).id
    monkeypatch.setattr(tasks, "new_id", lambda: taken)  # the insert breaks the primary key

    with pytest.raises(IntegrityError), session.begin_nested():
        tasks.create(session=session, owner_id=owner.id, task_in=tasks.TaskCreate(title="Two"))

    assert task_counts.get(session=session, owner_id=owner.id) == _counted(session, owner) == 1


def test_one_owners_count_is_spread_over_shares_that_sum_to_it(
    session: Session, owner: User
) -> None:
    made = [create_task(session, owner=owner) for _ in range(40)]
    for task in made[:10]:
        tasks.delete(
            session=session, owner_id=owner.id, task_id=str(task.id), expected_version=None
        )
    session.flush()

    shares = session.scalars(select(TaskCount.share).where(TaskCount.owner_id == owner.id)).all()
    # 40 writes landing on one share of 16 would take odds of 16**-39.
    assert 1 < len(shares) <= task_counts.SHARES
    assert task_counts.get(session=session, owner_id=owner.id) == 30


def test_unfiltered_page_total_is_the_kept_count_and_filtered_ones_are_counted(
    session: Session, owner: User
) -> None:
    create_task(session, owner=owner, status="done")
    create_task(session, owner=owner)
    # Were the kept count wrong, the unfiltered total would show it; the filtered one never.
    task_counts.adjust(session=session, owner_id=owner.id, by=39)
    page = PageRequest(page=1, limit=1)
    everything = task_listings.get_all(
        session=session,
        listing=TaskListing(owner_id=owner.id, filters=EVERYTHING, sort=TaskSort.CREATED_AT),
        page=page,
    )
    done = task_listings.get_all(
        session=session,
        listing=TaskListing(
            owner_id=owner.id, filters=TaskFilters(statuses=["done"]), sort=TaskSort.CREATED_AT
        ),
        page=page,
    )

    assert (everything.total, everything.pages) == (41, 41)
    assert done.total == 1


def test_keeping_the_count_leaves_the_accounts_updated_at_alone(
    session: Session, owner: User
) -> None:
    before = owner.updated_at
    task = create_task(session, owner=owner)
    tasks.delete(session=session, owner_id=owner.id, task_id=str(task.id), expected_version=None)
    session.flush()
    session.expire(owner)

    assert owner.updated_at == before


# --- update, delete ---------------------------------------------------------------------------


def _update(session: Session, task: Task, expected_version: int | None = None, **changes: Any):
    return tasks.update(
        session=session,
        owner_id=task.owner_id,
        task_id=str(task.id),
        changes=tasks.TaskUpdate(changes),
        expected_version=expected_version,
    )


def test_update_merges_the_patch_and_none_clears_optional_fields(
    session: Session, owner: User
) -> None:
    task = create_task(
        session, owner=owner, description="Notes", due_date=date(2026, 3, 1), tags=["home"]
    )

    _update(session, task, title="  Renamed ", description=None, due_date=None, tags=None)

    assert task.title == "Renamed"
    assert (task.description, task.due_date, task.tags) == (None, None, [])
    assert task.status == "todo"  # untouched fields stay


def test_update_changes_priority_and_its_rank(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner)

    _update(session, task, priority="urgent", tags=["a", "b"], due_date=date(2026, 5, 1))

    assert (task.priority, task.priority_rank) == ("urgent", PRIORITY_RANKS["urgent"])
    assert (task.tags, task.due_date) == (["a", "b"], date(2026, 5, 1))


@pytest.mark.parametrize(
    "changes",
    [
        {"title": None},
        {"status": None},
        {"priority": None},
        {"title": "   "},
        {"status": "archived"},
        {"priority": "critical"},
        {"tags": ["Bad Tag"]},
        {"owner_id": str(uuid.uuid4())},
        {"version": 7},
    ],
)
def test_update_refuses_removing_required_fields_bad_values_and_unknown_fields(
    session: Session, owner: User, changes: dict[str, Any]
) -> None:
    task = create_task(session, owner=owner)

    with pytest.raises(InvalidFieldError):
        _update(session, task, **changes)


def test_done_sets_completed_at_and_leaving_done_clears_it(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner)

    _update(session, task, status="in_progress")
    assert task.completed_at is None
    _update(session, task, status="done")
    completed_at = task.completed_at
    assert completed_at is not None
    _update(session, task, status="done", title="Still done")
    assert task.completed_at == completed_at
    _update(session, task, status="todo")
    assert task.completed_at is None


def test_version_and_updated_at_move_on_every_change(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner)
    task.updated_at = T0
    session.flush()
    version = task.version

    _update(session, task, title="One")
    assert task.version == version + 1
    assert task.updated_at > T0
    _update(session, task, description="Two")
    assert task.version == version + 2


def test_a_patch_that_changes_nothing_keeps_the_version(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner, title="Same", tags=["a"])

    _update(session, task, title=" Same ", tags=["a"], status="todo", priority="medium")

    assert task.version == 1


def test_matching_expected_version_updates(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner)

    _update(session, task, expected_version=1, title="Checked")

    assert (task.title, task.version) == ("Checked", 2)


def test_stale_expected_version_fails_the_update_and_changes_nothing(
    session: Session, owner: User
) -> None:
    task = create_task(session, owner=owner, title="Before")
    _update(session, task, title="Second")

    with pytest.raises(PreconditionFailedError):
        _update(session, task, expected_version=1, title="Lost update")
    assert (task.title, task.version) == ("Second", 2)


def test_a_write_that_lost_a_race_is_refused_and_the_session_stays_usable(
    session: Session, owner: User
) -> None:
    task = create_task(session, owner=owner)
    # Another transaction's write, which this session's copy of the task has not seen.
    session.execute(
        update(Task).where(Task.id == task.id).values(version=2),
        execution_options={"synchronize_session": False},
    )

    with pytest.raises(ConflictError):
        _update(session, task, title="Racing")
    with pytest.raises(PreconditionFailedError):
        tasks.delete(session=session, owner_id=owner.id, task_id=str(task.id), expected_version=1)
    assert create_task(session, owner=owner).version == 1


def test_delete_removes_the_task(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner)

    tasks.delete(session=session, owner_id=owner.id, task_id=str(task.id), expected_version=1)

    with pytest.raises(NotFoundError):
        tasks.get(session=session, owner_id=owner.id, task_id=str(task.id))


def test_delete_with_a_stale_version_keeps_the_task(session: Session, owner: User) -> None:
    task = create_task(session, owner=owner)
    _update(session, task, title="Changed")

    with pytest.raises(PreconditionFailedError):
        tasks.delete(session=session, owner_id=owner.id, task_id=str(task.id), expected_version=1)
    kept = tasks.get(session=session, owner_id=owner.id, task_id=str(task.id))
    assert (kept.title, kept.version) == ("Changed", task.version)


# --- filters ----------------------------------------------------------------------------------


def _titles(items: Sequence[Task]) -> set[str]:
    return {task.title for task in items}


def test_filter_by_any_of_several_statuses(session: Session, owner: User) -> None:
    for status in ("todo", "in_progress", "done"):
        create_task(session, owner=owner, title=status, status=status)

    filters = TaskFilters(statuses=["todo", "done"])
    assert _titles(_listed(session, owner, filters)) == {"todo", "done"}


def test_filter_by_priority(session: Session, owner: User) -> None:
    for priority in ("low", "high", "urgent"):
        create_task(session, owner=owner, title=priority, priority=priority)

    assert _titles(_listed(session, owner, TaskFilters(priority="high"))) == {"high"}


def test_filter_by_tag_matches_whole_tags_only(session: Session, owner: User) -> None:
    create_task(session, owner=owner, title="both", tags=["home", "work"])
    create_task(session, owner=owner, title="work", tags=["work"])
    create_task(session, owner=owner, title="longer", tags=["workout", "co-work"])
    create_task(session, owner=owner, title="none")

    assert _titles(_listed(session, owner, TaskFilters(tag="work"))) == {"both", "work"}


def test_due_filters_are_strict_and_never_match_undated_tasks(
    session: Session, owner: User
) -> None:
    for day in (1, 2, 3, 4):
        create_task(session, owner=owner, title=f"day {day}", due_date=date(2026, 6, day))
    create_task(session, owner=owner, title="undated")

    before = TaskFilters(due_before=date(2026, 6, 3))
    after = TaskFilters(due_after=date(2026, 6, 2))
    between = TaskFilters(due_after=date(2026, 6, 1), due_before=date(2026, 6, 4))
    assert _titles(_listed(session, owner, before)) == {"day 1", "day 2"}
    assert _titles(_listed(session, owner, after)) == {"day 3", "day 4"}
    assert _titles(_listed(session, owner, between)) == {"day 2", "day 3"}


def test_q_finds_a_title_substring_in_any_case(session: Session, owner: User) -> None:
    create_task(session, owner=owner, title="Buy MILK today")
    create_task(session, owner=owner, title="Call the milkman")
    create_task(session, owner=owner, title="Buy bread")

    found = _titles(_listed(session, owner, TaskFilters(q="mIlK")))
    assert found == {"Buy MILK today", "Call the milkman"}


@pytest.mark.parametrize(("q", "expected"), [("100%", "100% done"), ("a_b", "a_b"), ("/", "a/b")])
def test_q_matches_like_wildcards_literally(
    session: Session, owner: User, q: str, expected: str
) -> None:
    for title in ("100% done", "1000 done", "a_b", "axb", "a/b"):
        create_task(session, owner=owner, title=title)

    assert _titles(_listed(session, owner, TaskFilters(q=q))) == {expected}


def test_filters_combine(session: Session, owner: User) -> None:
    create_task(session, owner=owner, title="match", priority="high", tags=["x"], status="done")
    create_task(session, owner=owner, title="wrong tag", priority="high", tags=["y"])
    create_task(session, owner=owner, title="wrong priority", priority="low", tags=["x"])

    filters = TaskFilters(priority="high", tag="x", statuses=["done"], q="MAT")
    assert _titles(_listed(session, owner, filters)) == {"match"}


# --- sorting and pages ------------------------------------------------------------------------

# Columns that are not ordered alike, with ties and undated tasks among them.
_VARIED = [
    # title, priority, due (days after July 1st; None: undated), created hour, updated hour
    ("kiwi", "low", 3, 5, 2),
    ("apple", "urgent", None, 1, 7),
    ("mango", "medium", 1, 3, 7),
    ("banana", "high", 3, 1, 1),
    ("cherry", "low", None, 2, 3),
    ("apple", "urgent", 2, 6, 5),
    ("fig", "medium", 1, 4, 4),
]


def _create_varied(session: Session, owner: User, rows: Sequence[tuple[Any, ...]]) -> list[Task]:
    created = []
    for title, priority, day, created_hour, updated_hour in rows:
        due = None if day is None else date(2026, 7, 1) + timedelta(days=day)
        task = create_task(session, owner=owner, title=title, priority=priority, due_date=due)
        task.created_at = T0 + timedelta(hours=created_hour)
        task.updated_at = T0 + timedelta(hours=updated_hour)
        created.append(task)
    session.flush()
    return created


def _sort_key(task: Task, sort: TaskSort) -> tuple[Any, ...]:
    """The documented order, computed independently: NULL due dates after every date."""
    field = sort.value.removeprefix("-")
    value = getattr(task, "priority_rank" if field == "priority" else field)
    return (value is None, value if value is not None else date.max, task.id)


def _expected(items: Sequence[Task], sort: TaskSort) -> list[uuid.UUID]:
    ordered = sorted(items, key=lambda task: _sort_key(task, sort))
    return [task.id for task in (ordered[::-1] if sort.value.startswith("-") else ordered)]


@pytest.mark.parametrize("sort", list(TaskSort))
def test_each_sort_orders_by_its_key_then_id(session: Session, owner: User, sort: TaskSort) -> None:
    varied = _create_varied(session, owner, _VARIED)

    assert [task.id for task in _listed(session, owner, sort=sort)] == _expected(varied, sort)


def test_priority_sorts_by_urgency_not_by_name(session: Session, owner: User) -> None:
    for priority in ("high", "low", "urgent", "medium"):
        create_task(session, owner=owner, title=priority, priority=priority)

    listed = _listed(session, owner, sort=TaskSort.PRIORITY)
    assert [task.title for task in listed] == ["low", "medium", "high", "urgent"]


def test_undated_tasks_come_last_ascending_and_first_descending(
    session: Session, owner: User
) -> None:
    create_task(session, owner=owner, title="undated")
    create_task(session, owner=owner, title="dated", due_date=date(2026, 1, 1))

    ascending = _listed(session, owner, sort=TaskSort.DUE_DATE)
    descending = _listed(session, owner, sort=TaskSort.DUE_DATE_DESC)
    assert [task.title for task in ascending] == ["dated", "undated"]
    assert [task.title for task in descending] == ["undated", "dated"]


@pytest.mark.parametrize("day", [None, 9])
@pytest.mark.parametrize("sort", list(TaskSort))
def test_ties_are_broken_by_id_in_the_sorts_direction(
    session: Session, owner: User, sort: TaskSort, day: int | None
) -> None:
    same = _create_varied(session, owner, [("same", "high", day, 1, 1)] * 4)

    ids = sorted(task.id for task in same)
    expected = ids[::-1] if sort.value.startswith("-") else ids
    assert [task.id for task in _listed(session, owner, sort=sort)] == expected


@pytest.mark.parametrize("sort", list(TaskSort))
def test_numbered_pages_cover_every_task_once(
    session: Session, owner: User, sort: TaskSort
) -> None:
    varied = _create_varied(session, owner, _VARIED)

    seen = []
    for number in (1, 2, 3):
        page = task_listings.get_all(
            session=session,
            listing=TaskListing(owner_id=owner.id, filters=EVERYTHING, sort=sort),
            page=PageRequest(page=number, limit=3),
        )
        assert (page.total, page.pages) == (7, 3)
        seen.extend(task.id for task in page.items)

    assert seen == _expected(varied, sort)


# --- cursors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", list(TaskSort))
def test_cursor_slices_cover_every_task_once_in_order(
    session: Session, owner: User, sort: TaskSort
) -> None:
    varied = _create_varied(session, owner, _VARIED)

    for limit in (1, 2, 3, 7, 8):
        assert [task.id for task in _walk(session, owner, sort, limit)] == _expected(varied, sort)


def test_the_last_slice_has_no_next_cursor(session: Session, owner: User) -> None:
    for _ in range(4):
        create_task(session, owner=owner)

    first = _first_slice(session, owner, limit=2)
    last = _first_slice(session, owner, limit=2, after=first.next_cursor)

    assert first.next_cursor is not None
    assert (len(last.items), last.next_cursor) == (2, None)


@pytest.mark.parametrize(
    ("sort", "limit"),
    [
        (TaskSort.CREATED_AT, 3),
        (TaskSort.PRIORITY_DESC, 3),
        (TaskSort.TITLE, 2),
        (TaskSort.DUE_DATE, 6),  # the first slice ends among the undated tasks
        (TaskSort.DUE_DATE_DESC, 1),  # so does this one, where they come first
        (TaskSort.DUE_DATE_DESC, 3),
    ],
)
def test_cursor_neither_repeats_nor_skips_when_tasks_come_and_go(
    session: Session, owner: User, sort: TaskSort, limit: int
) -> None:
    varied = _create_varied(session, owner, _VARIED)
    first = _first_slice(session, owner, sort=sort, limit=limit)
    boundary = first.items[-1]
    boundary_key = _sort_key(boundary, sort)
    unseen = [i for i in _expected(varied, sort) if i not in {t.id for t in first.items}]
    # Between the two requests: the slice's own last task and a task not yet listed go, and
    # tasks that sort at either end of the order arrive.
    for gone in (boundary.id, unseen[-1]):
        tasks.delete(session=session, owner_id=owner.id, task_id=str(gone), expected_version=None)
    lowest, highest = _create_varied(
        session, owner, [("aaa", "low", -999, -1, -1), ("zzz", "urgent", None, 99, 99)]
    )

    rest: list[Task] = []
    cursor = first.next_cursor
    while cursor is not None:
        piece = _first_slice(session, owner, sort=sort, limit=2, after=cursor)
        rest.extend(piece.items)
        cursor = piece.next_cursor

    descending = sort.value.startswith("-")
    expected = [
        task.id
        for task in _listed(session, owner, sort=sort)
        if (_sort_key(task, sort) < boundary_key) == descending
    ]
    assert [task.id for task in rest] == expected
    assert (highest if not descending else lowest).id in expected
    assert not {task.id for task in first.items} & {task.id for task in rest}


def _altered(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :]


def _forged(cursor: str) -> str:
    """The same signature over other (well-formed) values: the last id replaced."""
    payload, signature = cursor.split(".")
    values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    values[-1] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


_TAMPERINGS: dict[str, Callable[[str], str]] = {
    "payload character": lambda c: _altered(c, 5),
    "payload's last character": lambda c: _altered(c, c.index(".") - 1),
    "signature character": lambda c: _altered(c, c.index(".") + 3),
    "signature's last character": lambda c: _altered(c, len(c) - 1),
    "truncated": lambda c: c[:-1],
    "extended": lambda c: c + "A",
    "no signature": lambda c: c.split(".")[0],
    "forged values": _forged,
    "empty": lambda _: "",
    "garbage": lambda _: "not-a-cursor",
    "non-ascii": lambda _: "é.é",
}


@pytest.mark.parametrize("tampering", sorted(_TAMPERINGS))
def test_an_altered_cursor_is_refused(session: Session, owner: User, tampering: str) -> None:
    for _ in range(3):
        create_task(session, owner=owner)
    cursor = _first_slice(session, owner).next_cursor
    assert cursor is not None

    with pytest.raises(InvalidCursorError):
        _first_slice(session, owner, after=_TAMPERINGS[tampering](cursor))


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"sort": TaskSort.CREATED_AT_DESC},
        {"sort": TaskSort.TITLE},
        {"filters": TaskFilters(statuses=["todo"])},
        {"filters": TaskFilters(q="Task")},
        {"secret": b"another secret"},
    ],
)
def test_a_cursor_only_works_for_the_listing_that_issued_it(
    session: Session, owner: User, elsewhere: dict[str, Any]
) -> None:
    for _ in range(3):
        create_task(session, owner=owner)
    cursor = _first_slice(session, owner).next_cursor

    with pytest.raises(InvalidCursorError):
        _first_slice(session, owner, after=cursor, **elsewhere)


def test_another_owners_cursor_is_refused(session: Session, owner: User, stranger: User) -> None:
    for _ in range(3):
        create_task(session, owner=owner)
    cursor = _first_slice(session, owner).next_cursor

    with pytest.raises(InvalidCursorError):
        _first_slice(session, stranger, after=cursor)


def test_a_cursor_survives_the_same_filters_spelled_differently(
    session: Session, owner: User
) -> None:
    for status in ("todo", "done", "todo"):
        create_task(session, owner=owner, status=status)
    first = _first_slice(session, owner, filters=TaskFilters(statuses=["todo", "done"]))

    rest = _first_slice(
        session, owner, filters=TaskFilters(statuses=["done", "todo"]), after=first.next_cursor
    )

    assert len(rest.items) == 1
