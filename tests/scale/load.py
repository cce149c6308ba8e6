"""A steady mixed load through HAProxy: reads, creates with an Idempotency-Key, and patches with
If-Match, from a few clients, each its own user and address; bounded in requests and in time."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from tests.scale.clients import client
from tests.utils.factories import signed_up

MAX_SECONDS = 180.0
MAX_REQUESTS_PER_CLIENT = 20_000
EXPECTED = {"create": 201, "read": 200, "patch": 200}


@dataclass(frozen=True)
class Outcome:
    operation: str
    started: float
    seconds: float
    status: int | None  # None: no HTTP answer at all
    error: str = ""

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    @property
    def failed(self) -> bool:
        return self.status != EXPECTED[self.operation]


@dataclass
class Created:
    """A create the load sent: its key and body, and the task id when it was answered 201."""

    key: str
    body: dict[str, Any]
    owner: dict[str, str]  # the creator's bearer headers
    task_id: str | None = None


@dataclass
class Patched:
    """A patch the load sent, and whether it was answered."""

    task_id: str
    body: dict[str, Any]
    answered: bool


@dataclass
class SteadyLoad:
    base_url: str
    clients: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    creates: list[Created] = field(default_factory=list)
    patches: list[Patched] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> SteadyLoad:
        for _ in range(self.clients):
            http = client(self.base_url)
            _, headers = signed_up(http)  # type: ignore[arg-type] - an httpx.Client will do
            thread = threading.Thread(target=self._run, args=(http, headers), daemon=True)
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for_requests(self, count: int, timeout: float = 60) -> None:
        """Until `count` more requests have been answered (or failed)."""
        target = len(self.outcomes) + count
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < target:
            assert time.monotonic() < deadline, "the load made no progress"
            time.sleep(0.05)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.started <= end]

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    def unreadable_creates(self) -> list[str]:
        """The ids of tasks answered 201 that cannot be read back now (through HAProxy)."""
        with client(self.base_url) as http:
            return [
                c.task_id
                for c in self.creates
                if c.task_id is not None
                and http.get(f"/v1/tasks/{c.task_id}", headers=c.owner).status_code != 200
            ]

    def _run(self, http: httpx.Client, headers: dict[str, str]) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        mine: list[str] = []
        try:
            for number in range(MAX_REQUESTS_PER_CLIENT):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                if number % 3 == 0 or not mine:
                    self._create(http, headers, mine)
                elif number % 3 == 1:
                    self._call("read", lambda: http.get(f"/v1/tasks/{mine[-1]}", headers=headers))
                else:
                    self._patch(http, headers, mine[number % len(mine)])
        finally:
            http.close()

    def _call(self, operation: str, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = send()
        except httpx.TransportError as error:
            self.outcomes.append(
                Outcome(operation, started, time.monotonic() - started, None, repr(error))
            )
            return None
        self.outcomes.append(
            Outcome(
                operation,
                started,
                time.monotonic() - started,
                response.status_code,
                "" if response.is_success else response.text[:300],
            )
        )
        return response

    def _create(self, http: httpx.Client, headers: dict[str, str], mine: list[str]) -> None:
        created = Created(
            key=uuid.uuid4().hex, body={"title": f"load {uuid.uuid4().hex[:8]}"}, owner=headers
        )
        self.creates.append(created)
        response = self._call(
            "create",
            lambda: http.post(
                "/v1/tasks", json=created.body, headers={**headers, "Idempotency-Key": created.key}
            ),
        )
        if response is not None and response.status_code == EXPECTED["create"]:
            created.task_id = response.json()["id"]
            mine.append(created.task_id)

    def _patch(self, http: httpx.Client, headers: dict[str, str], task_id: str) -> None:
        read = self._call("read", lambda: http.get(f"/v1/tasks/{task_id}", headers=headers))
        if read is None or read.status_code != EXPECTED["read"]:
            return
        # Title and description change together: a half-applied patch would show.
        marker = uuid.uuid4().hex[:8]
        body = {"title": f"patched {marker}", "description": f"by patch {marker}"}
        patch_headers = {
            **headers,
            "If-Match": read.headers["etag"],
            "Content-Type": "application/merge-patch+json",
        }
        answer = self._call(
            "patch",
            lambda: http.patch(f"/v1/tasks/{task_id}", json=body, headers=patch_headers),
        )
        self.patches.append(Patched(task_id, body, answer is not None and answer.is_success))


def summary(outcomes: list[Outcome]) -> str:
    """Requests, errors (by operation and status) and p99, for the run's printout."""
    if not outcomes:
        return "no requests"
    durations = sorted(o.seconds for o in outcomes)
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    errors = Counter((o.operation, o.status) for o in outcomes if o.failed)
    shown = ", ".join(f"{op} {status or 'no answer'} x{n}" for (op, status), n in errors.items())
    return (
        f"{len(outcomes)} requests, {sum(errors.values())} errors"
        f"{f' ({shown})' if shown else ''}, p99 {p99 * 1000:.0f} ms"
    )
