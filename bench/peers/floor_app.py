"""The floor: the benchmarked work with nothing above it but uvicorn.

No framework and no ORM: a bare ASGI callable and the raw driver (sqlite3, or psycopg on
PostgreSQL), one connection per worker used straight from the event loop (no thread hop). Per
request it does what the contract requires and nothing else: the token read by taskapi's own
TokenIssuer (HS256, the same claims), the user of the token's live session found in taskapi's
one query (token version, and a refresh-token family of the token's `sid` not revoked), the
task by id and owner, the page and its kept total (the task_counts shares) or the keyset slice
after a cursor, the same JSON (orjson, as taskapi) and the same ETag, Link and Location. No
validation, no metrics, no rate limit, no problem+json beyond a status and a `detail`.

It is what this work costs in Python on this machine, the lower bound taskapi is measured
against (`ratio_vs_floor`). Served by `uvicorn --factory bench.peers.floor_app:from_env`.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from bench.peers import common
from taskapi.db import SQLITE_BUSY_TIMEOUT_MS
from taskapi.errors import AuthenticationError
from taskapi.models import PRIORITY_RANKS
from taskapi.models.base import new_id
from taskapi.services import task_counts
from taskapi.services.passwords import Passwords
from taskapi.services.tokens import AccessClaims, TokenIssuer, hash_refresh_token, new_refresh_token
from taskapi.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Row = tuple[Any, ...]

_COLUMNS = (
    "id, owner_id, title, description, status, priority, due_date, tags,"
    " created_at, updated_at, completed_at, version"
)
# taskapi's query for the user of a token (taskapi.services.auth.authenticate).
_USER_OF_LIVE_SESSION = (
    "SELECT users.id FROM users WHERE users.id = ? AND users.token_version = ? AND EXISTS"
    " (SELECT 1 FROM refresh_tokens WHERE refresh_tokens.family_id = ?"
    " AND refresh_tokens.revoked_at IS NULL)"
)
_TASK = f"SELECT {_COLUMNS} FROM tasks WHERE id = ? AND owner_id = ?"  # noqa: S608 (constants)
_TOTAL = "SELECT sum(count) FROM task_counts WHERE owner_id = ?"
_PAGE = (
    f"SELECT {_COLUMNS} FROM tasks WHERE owner_id = ?"  # noqa: S608 (constants)
    " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
)
_SLICE = f"SELECT {_COLUMNS} FROM tasks WHERE owner_id = ?"  # noqa: S608 (constants)
_AFTER = " AND (created_at, id) < (?, ?)"
_SLICE_ORDER = " ORDER BY created_at DESC, id DESC LIMIT ?"
_INSERT_TASK = f"INSERT INTO tasks ({_COLUMNS}, priority_rank) VALUES ({', '.join('?' * 13)})"  # noqa: S608
_COUNT_ONE_MORE = (
    "INSERT INTO task_counts (owner_id, share, count) VALUES (?, ?, 1) ON CONFLICT"
    " (owner_id, share) DO UPDATE SET count = task_counts.count + excluded.count"
)
_USER_BY_EMAIL = "SELECT id, password_hash, token_version FROM users WHERE email = ?"
_LOCKED_USER = "SELECT password_hash, token_version FROM users WHERE id = ?"
_INSERT_REFRESH_TOKEN = (
    "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class Driver:
    """One raw connection and how its database stores what taskapi's models declare. This
    base is SQLite's (SQLAlchemy's storage there: UUIDs as 32 hex digits, naive UTC
    timestamps as text, JSON as text); PostgresDriver overrides what PostgreSQL types."""

    def __init__(self, url: str) -> None:
        # Autocommit in the driver: reads and writes each open the transaction taskapi opens.
        self._connection = sqlite3.connect(
            make_url(url).database or "", isolation_level=None, check_same_thread=False
        )
        for pragma in (  # taskapi's (taskapi.db)
            "journal_mode=WAL",
            "foreign_keys=ON",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "synchronous=NORMAL",
        ):
            self._connection.execute(f"PRAGMA {pragma}")

    def rows(self, sql: str, *params: Any) -> list[Row]:
        return self._connection.execute(sql, params).fetchall()

    def one(self, sql: str, *params: Any) -> Row | None:
        found: Row | None = self._connection.execute(sql, params).fetchone()
        return found

    def run(self, sql: str, *params: Any) -> None:
        """A statement that answers no rows."""
        self._connection.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction that writes: on SQLite the write lock is taken at BEGIN, as taskapi
        takes it."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The reads of one request in one snapshot, as taskapi's reading unit of work: on
        SQLite a deferred BEGIN, ended by ROLLBACK as taskapi's session ends it."""
        self._connection.execute("BEGIN")
        try:
            yield
        finally:
            self._connection.execute("ROLLBACK")

    # What a read before writing locks (PostgreSQL: the user's row, against its deletion).
    lock_for_writing = ""

    def close(self) -> None:
        self._connection.close()

    @staticmethod
    def uuid_in(value: uuid.UUID) -> Any:
        return value.hex

    @staticmethod
    def uuid_out(value: Any) -> uuid.UUID:
        return uuid.UUID(hex=value)

    @staticmethod
    def moment_in(value: datetime) -> Any:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    @staticmethod
    def moment_out(value: Any) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    @staticmethod
    def date_in(value: date | None) -> Any:
        return value.isoformat() if value else None

    @staticmethod
    def date_out(value: Any) -> str | None:
        return value  # type: ignore[no-any-return] # stored as ISO text already

    @staticmethod
    def tags_in(value: list[str]) -> Any:
        return json.dumps(value)

    @staticmethod
    def tags_out(value: Any) -> list[str]:
        return json.loads(value)  # type: ignore[no-any-return]


class PostgresDriver(Driver):
    """psycopg in autocommit; PostgreSQL's own types need no conversion but JSONB's."""

    def __init__(self, url: str) -> None:
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._pg = psycopg.connect(conninfo, autocommit=True)

    def rows(self, sql: str, *params: Any) -> list[Row]:
        return self._pg.execute(sql.replace("?", "%s"), params, prepare=True).fetchall()

    def one(self, sql: str, *params: Any) -> Row | None:
        return self._pg.execute(sql.replace("?", "%s"), params, prepare=True).fetchone()

    def run(self, sql: str, *params: Any) -> None:
        self._pg.execute(sql.replace("?", "%s"), params, prepare=True)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._pg.transaction():
            yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Nothing: taskapi reads PostgreSQL in autocommit, each statement its own snapshot."""
        yield

    lock_for_writing = " FOR KEY SHARE"

    def close(self) -> None:
        self._pg.close()

    @staticmethod
    def uuid_in(value: uuid.UUID) -> Any:
        return value

    @staticmethod
    def uuid_out(value: Any) -> uuid.UUID:
        return value  # type: ignore[no-any-return]

    @staticmethod
    def moment_in(value: datetime) -> Any:
        return value

    @staticmethod
    def moment_out(value: Any) -> datetime:
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    @staticmethod
    def date_in(value: date | None) -> Any:
        return value

    @staticmethod
    def date_out(value: Any) -> str | None:
        return value.isoformat() if value else None

    @staticmethod
    def tags_in(value: list[str]) -> Any:
        return Jsonb(value)

    @staticmethod
    def tags_out(value: Any) -> list[str]:
        return value  # type: ignore[no-any-return]


class Reply(Exception):  # noqa: N818 (not an error: the answer, raised from where it is known)
    """An answer other than the success, with its status and reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class Floor:
    """The ASGI application: four routes, matched by hand."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.signing_secret()
        self.tokens = common.token_issuer(settings)
        self.passwords = Passwords(settings.password_hash_profile)
        url = settings.database_url
        self.db = PostgresDriver(url) if url.startswith("postgresql") else Driver(url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        try:
            if path == common.TASKS_PATH and method == "GET":
                with self.db.reading():
                    status, body, headers = self.list_tasks(scope)
            elif path == common.TASKS_PATH and method == "POST":
                status, body, headers = self.create_task(scope, await _body(receive))
            elif path.startswith(common.TASKS_PATH + "/") and method == "GET":
                with self.db.reading():
                    status, body, headers = self.get_task(scope, path[len(common.TASKS_PATH) + 1 :])
            elif path == "/v1/auth/token" and method == "POST":
                status, body, headers = self.log_in(await _body(receive))
            else:
                raise Reply(404, "Nothing is here.")
        except Reply as reply:
            status, body, headers = reply.status, {"detail": reply.detail}, []
        await answer(send, status, body, headers)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        try:
            await serve_lifespan(receive, send)
        finally:
            self.db.close()

    # --- The endpoints: (status, body, extra headers) ---------------------------------------

    def get_task(self, scope: Scope, task_id: str) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        owner_id = self._user(scope)
        try:
            wanted = uuid.UUID(task_id)
        except ValueError:
            raise Reply(404, "No task has this id.") from None
        row = self.db.one(_TASK, self.db.uuid_in(wanted), self.db.uuid_in(owner_id))
        if row is None:
            raise Reply(404, "No task has this id.")
        return 200, resource(self.db, row), [(b"etag", etag(row[-1]))]

    def list_tasks(self, scope: Scope) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        owner_id = self._user(scope)
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        limit = int(params.get("limit", 20))
        owner = self.db.uuid_in(owner_id)
        if "cursor" not in params:
            page = int(params.get("page", 1))
            total_row = self.db.one(_TOTAL, owner)
            total = int(total_row[0] or 0) if total_row else 0
            rows = self.db.rows(_PAGE, owner, limit, (page - 1) * limit)
            meta, links = common.page_meta_and_links(page=page, limit=limit, total=total)
            body = {"mode": "page", "data": [resource(self.db, row) for row in rows], "meta": meta}
            return 200, body | {"links": links}, [(b"link", common.link_header(links).encode())]
        cursor = params["cursor"]
        if cursor:
            try:
                created_at, task_id = common.decode_cursor(self.secret, cursor, owner_id=owner_id)
            except common.BadCursorError:
                raise Reply(400, "The cursor is not valid.") from None
            after = (self.db.moment_in(created_at), self.db.uuid_in(task_id))
            rows = self.db.rows(_SLICE + _AFTER + _SLICE_ORDER, owner, *after, limit + 1)
        else:
            rows = self.db.rows(_SLICE + _SLICE_ORDER, owner, limit + 1)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = common.encode_cursor(
                self.secret,
                self.db.moment_out(last[8]),
                self.db.uuid_out(last[0]),
                owner_id=owner_id,
            )
        links = common.slice_links(limit=limit, cursor=cursor, next_cursor=next_cursor)
        body = {
            "mode": "cursor",
            "data": [resource(self.db, row) for row in rows],
            "meta": {"limit": limit},
            "links": links,
        }
        headers = [(b"link", f'<{links["next"]}>; rel="next"'.encode())] if next_cursor else []
        return 200, body, headers

    def create_task(
        self, scope: Scope, fields: dict[str, Any]
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        db = self.db
        status = fields.get("status", "todo")
        priority = fields.get("priority", "medium")
        due = fields.get("due_date")
        now = datetime.now(UTC)
        task_id = new_id()
        with db.transaction():
            owner_id = self._user(scope, lock=db.lock_for_writing)
            row = (
                task_id,
                owner_id,
                fields["title"].strip(),
                fields.get("description"),
                status,
                priority,
                date.fromisoformat(due) if due else None,
                list(fields.get("tags", ())),
                now,
                now,
                now if status == "done" else None,
                1,
            )
            converted = (
                db.uuid_in(row[0]),
                db.uuid_in(row[1]),
                *row[2:6],
                db.date_in(row[6]),
                db.tags_in(row[7]),
                db.moment_in(now),
                db.moment_in(now),
                db.moment_in(now) if row[10] else None,
                1,
            )
            db.run(_INSERT_TASK, *converted, PRIORITY_RANKS[priority])
            share = random.randrange(task_counts.SHARES)
            db.run(_COUNT_ONE_MORE, db.uuid_in(owner_id), share)
        headers = [(b"location", f"{common.TASKS_PATH}/{task_id}".encode()), (b"etag", etag(1))]
        return 201, _shaped(row), headers

    def log_in(self, credentials: dict[str, Any]) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        db = self.db
        email = str(credentials["email"]).strip().lower()
        found = db.one(_USER_BY_EMAIL, email)
        if not self.passwords.verify(found[1] if found else None, credentials["password"]):
            raise Reply(401, "The email or password is wrong.")
        assert found is not None  # verify answers False without a hash
        now = datetime.now(UTC)
        refresh_token, family_id = new_refresh_token(), uuid.uuid4()
        with db.transaction():
            # Read again, locked (PostgreSQL), after the slow check, as taskapi does: the
            # password may have changed meanwhile, or the account gone.
            locked = db.one(_LOCKED_USER + db.lock_for_writing, found[0])
            if locked is None or locked[0] != found[1]:
                raise Reply(401, "The email or password is wrong.")
            db.run(
                _INSERT_REFRESH_TOKEN,
                db.uuid_in(uuid.uuid4()),
                found[0],
                db.uuid_in(family_id),
                hash_refresh_token(refresh_token),
                db.moment_in(now),
                db.moment_in(now + self.tokens.refresh_ttl),
            )
        pair = common.token_pair(
            self.tokens,
            user_id=db.uuid_out(found[0]),
            token_version=locked[1],
            session_id=family_id,
            refresh_token=refresh_token,
            now=now,
        )
        return 200, pair, [(b"cache-control", b"no-store")]

    # --- What every endpoint shares --------------------------------------------------------

    def _user(self, scope: Scope, *, lock: str = "") -> uuid.UUID:
        """The id of the user the bearer token speaks for, checked as taskapi checks it."""
        claims, user_id = bearer_claims(self.tokens, scope)
        found = self.db.one(
            _USER_OF_LIVE_SESSION + lock,
            self.db.uuid_in(user_id),
            claims.token_version,
            self.db.uuid_in(claims.session_id),
        )
        if found is None:
            raise Reply(401, "The token has been revoked.")
        return user_id


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer ASGI's lifespan messages until shutdown: nothing to start or stop here."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def bearer_claims(tokens: TokenIssuer, scope: Scope) -> tuple[AccessClaims, uuid.UUID]:
    """The claims of the request's bearer token and the user id they name, read as taskapi
    reads them."""
    authorization = next(
        (value for name, value in scope["headers"] if name == b"authorization"), b""
    )
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Reply(401, "No bearer token was sent.")
    try:
        claims = tokens.read_access_token(token)
        return claims, uuid.UUID(claims.user_id)
    except (AuthenticationError, ValueError):
        raise Reply(401, "The token is not valid.") from None


def resource(db: Driver | type[Driver], row: Row) -> dict[str, Any]:
    """A task's JSON from its row as `db` stores it."""
    return _shaped(
        (
            db.uuid_out(row[0]),
            db.uuid_out(row[1]),
            *row[2:6],
            db.date_out(row[6]),
            db.tags_out(row[7]),
            db.moment_out(row[8]),
            db.moment_out(row[9]),
            db.moment_out(row[10]) if row[10] is not None else None,
        )
    )


def _shaped(task: Sequence[Any]) -> dict[str, Any]:
    """A task's JSON, as taskapi's task_resource writes it, from its values in column order."""
    due = task[6]
    return {
        "id": str(task[0]),
        "owner_id": str(task[1]),
        "title": task[2],
        "description": task[3],
        "status": task[4],
        "priority": task[5],
        "due_date": due.isoformat() if isinstance(due, date) else due,
        "tags": task[7],
        "created_at": common.timestamp(task[8]),
        "updated_at": common.timestamp(task[9]),
        "completed_at": common.timestamp(task[10]) if task[10] else None,
    }


async def answer(
    send: Send, status: int, body: Any, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    """The reply: JSON with its length, and `headers`."""
    content = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def etag(version: int) -> bytes:
    return f'"{version}"'.encode()


async def _body(receive: Receive) -> dict[str, Any]:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    parsed: dict[str, Any] = orjson.loads(b"".join(chunks))
    return parsed


def create_app(settings: Settings) -> Floor:
    return Floor(settings)


def from_env() -> Floor:
    """The app configured from the environment (`uvicorn --factory`), like taskapi.asgi."""
    return create_app(Settings.from_env())
