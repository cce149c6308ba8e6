"""The contract through openapi-generator's `python` client, generated from the served spec.

    TASKAPI_URL=http://127.0.0.1:8000/v1 PYTHONPATH=build/clients/openapi-generator/python \
        python clients/openapi-generator/python/scenario.py

Run by `make client-openapi-generator` against a live service: register, log in, create tasks
(one replayed with its Idempotency-Key), list them by page and by cursor (each decoded as its
own model through the `mode` discriminator), read one with If-None-Match (304), change it with
If-Match, and read the typed problems of a taken email (409), a stale ETag (412) and a reused
Idempotency-Key (422).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from taskapi_og import ApiClient, Configuration
from taskapi_og.api import AuthApi, TasksApi, UsersApi
from taskapi_og.exceptions import ApiException, ConflictException, UnprocessableEntityException
from taskapi_og.models import (
    Credentials,
    Problem,
    Task,
    TaskCreate,
    TaskPage,
    TaskPriority,
    TaskSlice,
    TaskStatus,
    TaskUpdate,
    UserCreate,
)

PASSWORD = "generated client passphrase"
TASKS = 7
LIMIT = 3
PROBLEM = "tag:taskapi.dev,2026:problem/"


def step(message: str) -> None:
    print(f"openapi-generator python: {message}")


def refused(call: Callable[[], object], status: int) -> ApiException:
    """The error `call` fails with, which must have `status` (the client raises every status
    outside 2xx, 304 included)."""
    try:
        call()
    except ApiException as error:
        if error.status != status:
            raise
        return error
    raise AssertionError(f"expected a {status}, but the call succeeded")


def problem_of(error: ApiException) -> Problem:
    """The typed problem an error response carries (the client decodes declared statuses)."""
    problem = error.data if isinstance(error.data, Problem) else Problem.from_json(error.body)
    assert isinstance(problem, Problem), error
    return problem


def sign_up(base_url: str) -> ApiClient:
    public = ApiClient(Configuration(host=base_url))
    email = f"og-{uuid.uuid4().hex[:8]}@example.com"
    account = UserCreate(email=email, name="Grace Hopper", age=45, password=PASSWORD)
    user = UsersApi(public).create_user(account)
    step(f"registered {user.email}")
    taken = refused(lambda: UsersApi(public).create_user(account), 409)
    assert isinstance(taken, ConflictException)
    assert problem_of(taken).type == PROBLEM + "conflict"
    step("a taken email is a typed 409 Problem")
    tokens = AuthApi(public).create_token(Credentials(email=email, password=PASSWORD))
    return ApiClient(Configuration(host=base_url, access_token=tokens.access_token))


def create_tasks(tasks: TasksApi) -> set[UUID]:
    ids = {
        tasks.create_task(TaskCreate(title=f"Task {n}", priority=TaskPriority.HIGH)).id
        for n in range(TASKS - 1)
    }
    key = str(uuid.uuid4())
    body = TaskCreate(title="Retried", tags=["retry"])
    first = tasks.create_task(body, idempotency_key=key)
    replay = tasks.create_task(body, idempotency_key=key)
    assert replay.id == first.id
    step("a retried create with the same Idempotency-Key replays the same task")
    reused = refused(
        lambda: tasks.create_task(TaskCreate(title="Something else"), idempotency_key=key), 422
    )
    assert isinstance(reused, UnprocessableEntityException)
    assert problem_of(reused).type == PROBLEM + "idempotency-key-reused"
    step("the same key with another body is a typed 422 Problem")
    return {*ids, first.id}


def list_both_ways(tasks: TasksApi) -> tuple[list[UUID], list[UUID]]:
    by_page: list[UUID] = []
    page = 1
    while True:
        listed = tasks.list_tasks(page=page, limit=LIMIT).actual_instance
        assert isinstance(listed, TaskPage), listed
        by_page += [task.id for task in listed.data]
        if listed.links.next is None:
            break
        page += 1
    assert listed.meta.total == len(by_page)
    by_cursor: list[UUID] = []
    cursor = ""
    while True:
        sliced = tasks.list_tasks(cursor=cursor, limit=LIMIT).actual_instance
        assert isinstance(sliced, TaskSlice), sliced
        by_cursor += [task.id for task in sliced.data]
        if sliced.links.next is None:
            break
        cursor = parse_qs(urlsplit(sliced.links.next).query)["cursor"][0]
    return by_page, by_cursor


def edit_with_etags(tasks: TasksApi, task_id: str) -> None:
    read = tasks.get_task_with_http_info(task_id)
    etag = {name.lower(): value for name, value in (read.headers or {}).items()}["etag"]
    assert isinstance(read.data, Task)
    unchanged = refused(lambda: tasks.get_task(task_id, if_none_match=etag), 304)
    assert not unchanged.body
    step("If-None-Match with the current ETag is a 304")
    done = tasks.update_task(task_id, TaskUpdate(status=TaskStatus.DONE), if_match=etag)
    assert done.status is TaskStatus.DONE
    stale = refused(
        lambda: tasks.update_task(task_id, TaskUpdate(title="Too late"), if_match=etag), 412
    )
    assert problem_of(stale).type == PROBLEM + "precondition-failed"
    step("edited with If-Match; a stale ETag is a typed 412 Problem")


def main() -> int:
    client = sign_up(os.environ["TASKAPI_URL"])
    tasks = TasksApi(client)
    created = create_tasks(tasks)
    by_page, by_cursor = list_both_ways(tasks)
    assert sorted(by_page) == sorted(by_cursor) == sorted(created)
    step(f"listed {len(created)} tasks by page and by cursor, each once")
    edit_with_etags(tasks, str(by_page[0]))
    step("scenario passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
