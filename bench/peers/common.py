"""What the peers share below the web framework: database, tokens, cursors, queries, shapes.

Everything here mirrors what taskapi does for the benchmarked operations, query for query (one
session per request; the token read and the user of its live session loaded by taskapi's own
TokenIssuer and `auth.authenticate`; a task read by primary key then
checked for its owner; a numbered page as the owner's kept task count plus OFFSET; a cursor
slice as a keyset seek for limit + 1 rows), so a difference in the figures is a difference of
web layer.

Only the default listing (`sort=-created_at`, no filters) is implemented: it is the one the
benchmark drives. Cursors use taskapi's format and key, so one cursor works on every service.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, literal, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from taskapi.db import WRITE_INTENT, create_engine_for
from taskapi.errors import AuthenticationError
from taskapi.handlers import tasks as handlers_tasks
from taskapi.models import PRIORITY_RANKS, RefreshToken, Task, User
from taskapi.services import auth, task_counts
from taskapi.services.passwords import Passwords
from taskapi.services.tokens import TokenIssuer, hash_refresh_token, new_refresh_token
from taskapi.settings import Settings
from taskapi.web import responses

TASKS_PATH = "/v1/tasks"
DEFAULT_SORT = "-created_at"
# taskapi's cursor format (taskapi.services.cursors), so cursors are interchangeable.
_CURSOR_PURPOSE = b"taskapi.cursor.v1\x00"
_NO_FILTERS: dict[str, Any] = {
    "statuses": [],
    "priority": None,
    "tag": None,
    "due_before": None,
    "due_after": None,
    "q": None,
}


class NotFoundError(Exception):
    """No task with this id belongs to the caller."""


class UnauthorizedError(Exception):
    """The bearer token is missing, invalid, or speaks for nobody any more."""


class BadCursorError(Exception):
    """The cursor was not issued, unaltered, for this listing."""


class Backend:
    """The database and secrets of one peer process, configured from the same environment
    variables as taskapi (so the same database, pool, secret, claims and password profile)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.signing_secret()
        self.tokens = token_issuer(settings)
        self.passwords = Passwords(settings.password_hash_profile)
        engine = create_engine_for(settings.database_url, pool=settings.pool)
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @contextmanager
    def session(self, *, writes: bool = False) -> Iterator[Session]:
        """One session per request; the caller commits what it writes."""
        with self._sessions() as session:
            if writes:
                # On SQLite, take the write lock at BEGIN (as taskapi does): a transaction that
                # read first would fail if another writer committed meanwhile.
                session.connection(execution_options={WRITE_INTENT: True})
            yield session


def token_issuer(settings: Settings) -> TokenIssuer:
    """taskapi's issuer and reader of tokens, configured as taskapi configures it."""
    return TokenIssuer(
        secret=settings.signing_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )


def user_for_token(backend: Backend, session: Session, token: str) -> auth.Caller:
    try:
        claims = backend.tokens.read_access_token(token)
        return auth.authenticate(session=session, claims=claims)
    except AuthenticationError:
        raise UnauthorizedError from None


def get_task(session: Session, *, owner_id: uuid.UUID, task_id: str) -> Task:
    try:
        task = session.get(Task, uuid.UUID(task_id))
    except ValueError:
        raise NotFoundError from None
    if task is None or task.owner_id != owner_id:
        raise NotFoundError
    return task


def _owned(owner_id: uuid.UUID) -> Select[Task]:
    return select(Task).where(Task.owner_id == owner_id)


_ORDER = (Task.created_at.desc(), Task.id.desc())


def list_page(
    session: Session, *, owner_id: uuid.UUID, page: int, limit: int
) -> tuple[Sequence[Task], int]:
    """One numbered page and the total, as taskapi knows it (the owner's kept task count)."""
    total = task_counts.get(session=session, owner_id=owner_id)
    items = session.scalars(
        _owned(owner_id).order_by(*_ORDER).limit(limit).offset((page - 1) * limit)
    )
    return items.all(), total


def list_slice(
    backend: Backend, session: Session, *, owner_id: uuid.UUID, limit: int, cursor: str
) -> tuple[Sequence[Task], str | None]:
    """Up to `limit` tasks after `cursor` (from the first when empty), and the next cursor."""
    query = _owned(owner_id)
    if cursor:
        query = query.where(_after(decode_cursor(backend.secret, cursor, owner_id=owner_id)))
    rows = session.scalars(query.order_by(*_ORDER).limit(limit + 1)).all()
    items = rows[:limit]
    if len(rows) <= limit:
        return items, None
    last = items[-1]
    return items, encode_cursor(backend.secret, last.created_at, last.id, owner_id=owner_id)


def _after(values: tuple[datetime, uuid.UUID]) -> ColumnElement[bool]:
    created_at, task_id = values
    key = tuple_(literal(created_at, Task.created_at.type), literal(task_id, Task.id.type))
    return tuple_(Task.created_at, Task.id) < key


def create_task(
    session: Session,
    *,
    owner_id: uuid.UUID,
    title: str,
    description: str | None = None,
    status: str = "todo",
    priority: str = "medium",
    due_date: date | None = None,
    tags: Sequence[str] = (),
) -> Task:
    task = Task(
        owner_id=owner_id,
        title=title.strip(),
        description=description,
        status=status,
        priority=priority,
        priority_rank=PRIORITY_RANKS[priority],
        due_date=due_date,
        tags=list(tags),
        completed_at=datetime.now(UTC) if status == "done" else None,
    )
    session.add(task)
    session.flush()
    task_counts.adjust(session=session, owner_id=owner_id, by=1)
    return task


def log_in(
    backend: Backend, session: Session, *, email: str, password: str
) -> dict[str, Any] | None:
    """A token pair for these credentials (a refresh token row is stored), or None."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if not backend.passwords.verify(user.password_hash if user else None, password) or not user:
        return None
    now = datetime.now(UTC)
    refresh_token = new_refresh_token()
    family_id = uuid.uuid4()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_refresh_token(refresh_token),
            created_at=now,
            expires_at=now + backend.tokens.refresh_ttl,
        )
    )
    session.flush()
    return token_pair(
        backend.tokens,
        user_id=user.id,
        token_version=user.token_version,
        session_id=family_id,
        refresh_token=refresh_token,
        now=now,
    )


def token_pair(
    tokens: TokenIssuer,
    *,
    user_id: uuid.UUID,
    token_version: int,
    session_id: uuid.UUID,
    refresh_token: str,
    now: datetime,
) -> dict[str, Any]:
    """The body of a successful log in, as taskapi answers it."""
    access_token = tokens.issue_access_token(
        user_id=str(user_id), token_version=token_version, session_id=session_id, now=now
    )
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(tokens.access_ttl.total_seconds()),
        "refresh_token": refresh_token,
    }


# --- Shapes and links, as taskapi.web.responses writes them -------------------------------


# The same serialiser as taskapi's, so every service spends the same on shaping a task.
timestamp = responses.timestamp
task_resource = handlers_tasks.task_resource


def etag(task: Task) -> str:
    return f'"{task.version}"'


def page_meta_and_links(
    *, page: int, limit: int, total: int
) -> tuple[dict[str, int], dict[str, str | None]]:
    pages = -(-total // limit)
    last = max(pages, 1)

    def link(number: int) -> str:
        return f"{TASKS_PATH}?{urlencode({'page': number, 'limit': limit, 'sort': DEFAULT_SORT})}"

    links = {
        "self": link(page),
        "first": link(1),
        "prev": link(min(page - 1, last)) if page > 1 else None,
        "next": link(page + 1) if page < pages else None,
        "last": link(last),
    }
    return {"page": page, "limit": limit, "total": total, "pages": pages}, links


def slice_links(*, limit: int, cursor: str, next_cursor: str | None) -> dict[str, str | None]:
    def link(at: str) -> str:
        return f"{TASKS_PATH}?{urlencode({'sort': DEFAULT_SORT, 'limit': limit, 'cursor': at})}"

    return {"self": link(cursor), "next": link(next_cursor) if next_cursor else None}


def link_header(links: dict[str, str | None]) -> str:
    return ", ".join(
        f'<{href}>; rel="{rel}"' for rel, href in links.items() if href and rel != "self"
    )


# --- Cursors: taskapi's format (base64url JSON values . base64url HMAC-SHA256) ------------


def encode_cursor(
    secret: str,
    created_at: datetime,
    task_id: uuid.UUID,
    *,
    owner_id: uuid.UUID,
) -> str:
    values = [{"datetime": created_at.isoformat()}, {"uuid": str(task_id)}]
    payload = json.dumps(values, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, payload, owner_id))}"


def decode_cursor(secret: str, cursor: str, *, owner_id: uuid.UUID) -> tuple[datetime, uuid.UUID]:
    try:
        encoded_payload, encoded_signature = cursor.split(".")
        payload = _unb64(encoded_payload)
        if not hmac.compare_digest(
            _unb64(encoded_signature), _signature(secret, payload, owner_id)
        ):
            raise BadCursorError
        created_at, task_id = json.loads(payload)
        return datetime.fromisoformat(created_at["datetime"]), uuid.UUID(task_id["uuid"])
    except (ValueError, TypeError, KeyError):
        raise BadCursorError from None


def _signature(secret: str, payload: bytes, owner_id: uuid.UUID) -> bytes:
    listing = json.dumps({"owner": str(owner_id), "filters": _NO_FILTERS}, sort_keys=True)
    scope = f"{listing}\x00{DEFAULT_SORT}"
    key = hmac.new(secret.encode(), _CURSOR_PURPOSE + scope.encode(), hashlib.sha256)
    return hmac.new(key.digest(), payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
