"""A new user's first minutes, through the Python client generated from the spec.

    TASKAPI_URL=http://127.0.0.1:8000/v1 PYTHONPATH=build/clients python clients/python/scenario.py

Run by `make client-python` against a live service (tools/live_service.py): register, log in,
read /users/me, read a problem+json error as a typed `Problem`, then the tasks walk in
tasks_scenario.py when the spec has the tasks operations. Every step asserts the typed result,
so a spec change that breaks generated clients fails here, not in a user's code.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import yaml
from taskapi_client import AuthenticatedClient, Client
from taskapi_client.api.auth import create_token
from taskapi_client.api.users import create_user, get_current_user
from taskapi_client.models import Credentials, Problem, TokenPair, User, UserCreate, UserRole

SPEC = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"
PASSWORD = "correct horse battery staple"
TASK_OPERATIONS = {
    "create_task",
    "list_tasks",
    "get_task",
    "update_task",
    "delete_task",
}


def step(message: str) -> None:
    print(f"client-python: {message}")


def spec_operation_ids() -> set[str]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return {
        operation["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def sign_up(base_url: str) -> AuthenticatedClient:
    public = Client(base_url=base_url, raise_on_unexpected_status=True)
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    registered = create_user.sync_detailed(
        client=public, body=UserCreate(email=email, name="Ada Lovelace", age=36, password=PASSWORD)
    )
    assert registered.status_code == 201, registered.content
    assert isinstance(registered.parsed, User)
    assert registered.parsed.role is UserRole.USER
    step(f"registered {registered.parsed.email} ({registered.parsed.id})")

    tokens = create_token.sync(client=public, body=Credentials(email=email, password=PASSWORD))
    assert isinstance(tokens, TokenPair), tokens
    step(f"logged in: a {tokens.token_type.value} token for {tokens.expires_in}s")

    client = AuthenticatedClient(base_url=base_url, token=tokens.access_token)
    me = get_current_user.sync(client=client)
    assert isinstance(me, User)
    assert me.id == registered.parsed.id
    step("read /users/me")

    taken = create_user.sync(
        client=public, body=UserCreate(email=email, name="Someone Else", age=40, password=PASSWORD)
    )
    assert isinstance(taken, Problem), taken
    assert taken.status == 409
    assert taken.type_ == "tag:taskapi.dev,2026:problem/conflict"
    assert taken.request_id
    step(f"a taken email is a typed Problem: {taken.status} {taken.type_}")
    return client


def main() -> int:
    client = sign_up(os.environ["TASKAPI_URL"])
    missing = TASK_OPERATIONS - spec_operation_ids()
    if missing:
        step(f"SKIPPED the tasks part: the spec lacks {', '.join(sorted(missing))}")
        return 0
    from tasks_scenario import walk_tasks  # noqa: PLC0415 - exists only with the tasks API

    walk_tasks(client, step)
    step("scenario passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
