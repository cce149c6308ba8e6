"""The tasks part of the client scenario: create, page, walk by cursor, edit with If-Match."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from taskapi_client import AuthenticatedClient
from taskapi_client.api.tasks import (
    create_task,
    get_task,
    list_tasks,
    update_task,
)
from taskapi_client.models import (
    ListTasksSort,
    Problem,
    Task,
    TaskCreate,
    TaskPage,
    TaskPriority,
    TaskSlice,
    TaskStatus,
    TaskUpdate,
)

# As many as the walkthrough: enough for 13 pages of 20.
TASKS = 250
LIMIT = 20


def walk_tasks(client: AuthenticatedClient, step: Callable[[str], None]) -> None:
    created = create(client)
    step(f"created {len(created)} tasks (one retried with the same Idempotency-Key)")
    assert by_page(client) == created
    step(f"listed them page by page ({LIMIT} a page), each exactly once")
    assert by_cursor(client) == created
    step("walked them by cursor, each exactly once")
    filter_and_sort(client)
    step("filtered them by status and title text, sorted by title")
    edit_with_if_match(client, next(iter(created)))
    step("edited one with If-Match; a stale ETag is a typed 412 Problem")


def create(client: AuthenticatedClient) -> set[UUID]:
    ids = set()
    for number in range(TASKS):
        body = TaskCreate(title=f"Task {number}", priority=TaskPriority.HIGH, tags=["client"])
        task = create_task.sync(client=client, body=body, idempotency_key=f"create-{number}")
        assert isinstance(task, Task), task
        ids.add(task.id)
    replay = create_task.sync(
        client=client,
        body=TaskCreate(title="Task 0", priority=TaskPriority.HIGH, tags=["client"]),
        idempotency_key="create-0",
    )
    assert isinstance(replay, Task)
    assert replay.id in ids
    return ids


def by_page(client: AuthenticatedClient) -> set[UUID]:
    seen: list[UUID] = []
    page = 1
    while True:
        listed = list_tasks.sync(client=client, page=page, limit=LIMIT)
        assert isinstance(listed, TaskPage), listed
        seen += [task.id for task in listed.data]
        if listed.links.next_ is None:
            break
        page += 1
    assert listed.meta.total == len(seen)
    assert len(seen) == len(set(seen))
    return set(seen)


def by_cursor(client: AuthenticatedClient) -> set[UUID]:
    seen: list[UUID] = []
    cursor = ""
    while True:
        listed = list_tasks.sync(client=client, cursor=cursor, limit=LIMIT)
        assert isinstance(listed, TaskSlice), listed
        seen += [task.id for task in listed.data]
        if listed.links.next_ is None:
            break
        cursor = parse_qs(urlsplit(listed.links.next_).query)["cursor"][0]
    assert len(seen) == len(set(seen))
    return set(seen)


def filter_and_sort(client: AuthenticatedClient) -> None:
    # "Task 1", "Task 10".."Task 19", "Task 100".."Task 199": 111 titles contain "task 1".
    listed = list_tasks.sync(
        client=client,
        q="task 1",
        status=[TaskStatus.TODO],
        sort=ListTasksSort.TITLE,
        limit=100,
    )
    assert isinstance(listed, TaskPage), listed
    assert listed.meta.total == 111
    titles = [task.title for task in listed.data]
    assert titles == sorted(titles)


def edit_with_if_match(client: AuthenticatedClient, task_id: UUID) -> None:
    read = get_task.sync_detailed(str(task_id), client=client)
    etag = read.headers["ETag"]
    done = update_task.sync(
        str(task_id), client=client, body=TaskUpdate(status=TaskStatus.DONE), if_match=etag
    )
    assert isinstance(done, Task), done
    assert done.status is TaskStatus.DONE
    assert done.completed_at is not None
    stale = update_task.sync(
        str(task_id), client=client, body=TaskUpdate(title="Too late"), if_match=etag
    )
    assert isinstance(stale, Problem), stale
    assert stale.status == 412
