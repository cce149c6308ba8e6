"""How a worker reaches PostgreSQL: `python -m bench pg-access`.

taskapi runs its synchronous handlers on a pool of threads, each with its own psycopg
connection, and a request's statements go one round trip each. psycopg also offers a pipeline
(several statements sent before any answer is read: one round trip) and connections driven by
asyncio itself (no thread hop). This serves the floor's get one task, the benchmark's hottest
request, reached each way, so that they are measured against one another in one run:

- `loop`: one synchronous connection on the event loop (the floor's way; each round trip
  blocks the worker);
- `threads`: taskapi's way: `DB_POOL_SIZE` threads, each with its connection, the two statements
  one after the other;
- `pipeline`: the same threads, the two statements in one pipeline;
- `async`: `DB_POOL_SIZE` asyncio connections on the loop, the statements one after the other;
- `async-pipeline`: the same, in one pipeline.

Each does the floor's work (`bench.peers.floor_app`): the token read by taskapi's TokenIssuer,
the user of its live session, the task by id and owner, the same JSON and ETag.
"""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.peers import common
from bench.peers.floor_app import (
    _TASK,
    _USER_OF_LIVE_SESSION,
    PostgresDriver,
    Receive,
    Reply,
    Row,
    Scope,
    Send,
    answer,
    bearer_claims,
    etag,
    resource,
    serve_lifespan,
)
from taskapi.services.tokens import AccessClaims
from taskapi.settings import Settings

STRATEGIES = ("loop", "threads", "pipeline", "async", "async-pipeline")
_USER = _USER_OF_LIVE_SESSION.replace("?", "%s")
_TASK_BY_OWNER = _TASK.replace("?", "%s")
# The user of the live session, then the task: (user found, task row or None).
Found = tuple[bool, Row | None]


def _statements(claims: AccessClaims, user_id: uuid.UUID, task_id: uuid.UUID) -> tuple[Any, ...]:
    return (
        (_USER, (user_id, claims.token_version, claims.session_id)),
        (_TASK_BY_OWNER, (task_id, user_id)),
    )


def _read_in_turn(connection: psycopg.Connection[Any], statements: tuple[Any, ...]) -> Found:
    user, task = (connection.execute(sql, values, prepare=True) for sql, values in statements)
    return user.fetchone() is not None, task.fetchone()


def _read_piped(connection: psycopg.Connection[Any], statements: tuple[Any, ...]) -> Found:
    with connection.pipeline():
        user, task = [connection.execute(sql, values, prepare=True) for sql, values in statements]
    return user.fetchone() is not None, task.fetchone()


async def _read_in_turn_async(
    connection: psycopg.AsyncConnection[Any], statements: tuple[Any, ...]
) -> Found:
    user, task = [await connection.execute(sql, values, prepare=True) for sql, values in statements]
    return await user.fetchone() is not None, await task.fetchone()


async def _read_piped_async(
    connection: psycopg.AsyncConnection[Any], statements: tuple[Any, ...]
) -> Found:
    async with connection.pipeline():
        user, task = [
            await connection.execute(sql, values, prepare=True) for sql, values in statements
        ]
    return await user.fetchone() is not None, await task.fetchone()


class AccessProbe:
    """The ASGI app: get one task, its database reached by `strategy`."""

    def __init__(self, settings: Settings, strategy: str) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; know {STRATEGIES}")
        self.tokens = common.token_issuer(settings)
        self.strategy = strategy
        url = make_url(settings.database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.size = 1 if strategy == "loop" else settings.pool.size
        self._read: Callable[[tuple[Any, ...]], Awaitable[Found]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with self._connected():
                await serve_lifespan(receive, send)
            return
        try:
            claims, user_id = bearer_claims(self.tokens, scope)
            task_id = uuid.UUID(scope["path"].rpartition("/")[2])
        except ValueError:
            await answer(send, 404, {"detail": "No task has this id."}, [])
            return
        except Reply as reply:
            await answer(send, reply.status, {"detail": reply.detail}, [])
            return
        assert self._read is not None  # set at start-up
        user_found, row = await self._read(_statements(claims, user_id, task_id))
        if not user_found:
            await answer(send, 401, {"detail": "The token has been revoked."}, [])
        elif row is None:
            await answer(send, 404, {"detail": "No task has this id."}, [])
        else:
            await answer(send, 200, resource(PostgresDriver, row), [(b"etag", etag(row[-1]))])

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[None]:
        if self.strategy.startswith("async"):
            async with self._async_connections():
                yield
        else:
            with self._threads():
                yield

    @asynccontextmanager
    async def _async_connections(self) -> AsyncIterator[None]:
        idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        for _ in range(self.size):
            idle.put_nowait(await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True))
        read = _read_piped_async if self.strategy == "async-pipeline" else _read_in_turn_async

        async def on_a_connection(statements: tuple[Any, ...]) -> Found:
            connection = await idle.get()
            try:
                return await read(connection, statements)
            finally:
                idle.put_nowait(connection)

        self._read = on_a_connection
        try:
            yield
        finally:
            while not idle.empty():
                await idle.get_nowait().close()

    @contextmanager
    def _threads(self) -> Iterator[None]:
        idle: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()
        for _ in range(self.size):
            idle.put(psycopg.connect(self.conninfo, autocommit=True))
        read = _read_piped if self.strategy == "pipeline" else _read_in_turn

        def on_a_connection(statements: tuple[Any, ...]) -> Found:
            connection = idle.get()
            try:
                return read(connection, statements)
            finally:
                idle.put(connection)

        if self.strategy == "loop":

            async def on_the_loop(statements: tuple[Any, ...]) -> Found:
                return on_a_connection(statements)

            self._read = on_the_loop
            executor = None
        else:
            executor = ThreadPoolExecutor(self.size, thread_name_prefix="handler")

            async def in_a_thread(statements: tuple[Any, ...]) -> Found:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(executor, on_a_connection, statements)

            self._read = in_a_thread
        try:
            yield
        finally:
            if executor is not None:
                executor.shutdown()
            while not idle.empty():
                idle.get().close()


def _factory(strategy: str) -> Callable[[], AccessProbe]:
    def from_env() -> AccessProbe:
        return AccessProbe(Settings.from_env(), strategy)

    return from_env


# `uvicorn --factory bench.pg_access:<name>`, as bench.serve.APPS names them.
loop, threads, pipeline = _factory("loop"), _factory("threads"), _factory("pipeline")
async_in_turn, async_pipeline = _factory("async"), _factory("async-pipeline")
