"""The benchmark's data: N users and N tasks, in the real schema, inserted in bulk.

The schema comes from taskapi's own migrations (`upgrade_to_head`), so indexes and constraints
are the ones production has. Rows go in by executemany (SQLite) or COPY (PostgreSQL), never
through the API. A seeded database is kept (`var/bench/` for SQLite, `taskapi_bench_<size>` on
the PostgreSQL server) and reused while its size matches; migrations added since are applied
on top.

Every request authenticates as one of two accounts: the *owner*, who holds `OWNER_SHARE` of all
tasks (so listings, counts and deep pages grow with the table), and the *writer*, who holds none
and receives the tasks the create benchmark makes (so writes never change what is listed).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, profiles
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.engine import make_url

from taskapi.db import create_engine_for
from taskapi.migrations import upgrade_to_head
from taskapi.models import PRIORITY_RANKS, RefreshToken, Task, TaskCount, User

# The login session the benchmark's access tokens belong to (taskapi checks it is alive).
BENCH_SESSION_ID = uuid.UUID("0193a000-0000-7000-8000-00000000be7c")
OWNER_EMAIL = "owner@bench.example"
WRITER_EMAIL = "writer@bench.example"
PASSWORD = "bench password, not a secret"
OWNER_SHARE = 0.5
BATCH = 10_000
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_STATUSES = ("todo", "in_progress", "done")
_PRIORITIES = tuple(PRIORITY_RANKS)
_TAGS: tuple[list[str], ...] = (["work"], ["home", "errands"], [], ["reports"])


def parse_size(text_size: str) -> int:
    """`10k`, `100k`, `1M` or a plain number."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", text_size)
    if match is None:
        raise ValueError(f"not a size: {text_size!r} (say 10k, 100k, 1M)")
    number, unit = int(match[1]), match[2].lower()
    return number * {"": 1, "k": 1_000, "m": 1_000_000}[unit]


def size_label(size: int) -> str:
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    return f"{size // 1_000}k" if size % 1_000 == 0 else str(size)


@dataclass(frozen=True, kw_only=True)
class Fixture:
    """What the load needs to know about a seeded database."""

    url: str
    size: int
    owner_id: uuid.UUID
    writer_id: uuid.UUID
    owner_tasks: int
    sample_task_id: uuid.UUID  # one of the owner's tasks, in the middle of the table


def database_url(backend: str, size: int, *, data_dir: Path, server_url: str | None) -> str:
    """Where the database of this size lives: a file for SQLite, a database of its own on the
    PostgreSQL server of `server_url` (any database on it)."""
    name = f"taskapi_bench_{size_label(size).lower()}"
    if backend == "sqlite":
        return f"sqlite:///{data_dir / name}.sqlite3"
    if not server_url:
        raise SystemExit("PostgreSQL needs BENCH_DATABASE_URL or TEST_DATABASE_URL (a server).")
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def prepare(url: str, size: int, *, log: Any = print) -> Fixture:
    """A database at `url` holding `size` users and tasks, at the schema's head, with what
    earlier benchmark runs wrote (the writer's tasks, refresh tokens) removed."""
    if not _seeded(url, size):
        log(f"seeding {size_label(size)} users and tasks into {_safe(url)} ...")
        _recreate(url)
        upgrade_to_head(url)
        engine = create_engine_for(url)
        try:
            _seed(engine, size)
        finally:
            engine.dispose()
    else:
        upgrade_to_head(url)
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            writer = connection.scalar(select(User.id).where(User.email == WRITER_EMAIL))
            connection.execute(delete(Task).where(Task.owner_id == writer))
            connection.execute(delete(TaskCount).where(TaskCount.owner_id == writer))
            connection.execute(delete(RefreshToken))
            _open_bench_sessions(connection)
        _vacuum(engine)
        return _fixture(engine, url, size)
    finally:
        engine.dispose()


def _open_bench_sessions(connection: Connection) -> None:
    """One live session for each of the owner and the writer (BENCH_SESSION_ID), as a login
    would leave: the refresh token that keeps it alive."""
    now = datetime.now(UTC)
    for email in (OWNER_EMAIL, WRITER_EMAIL):
        user_id = connection.scalar(select(User.id).where(User.email == email))
        connection.execute(
            insert(RefreshToken).values(
                id=uuid.uuid4(),
                user_id=user_id,
                family_id=BENCH_SESSION_ID,
                token_hash=hashlib.sha256(f"bench session of {email}".encode()).hexdigest(),
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
        )


def _vacuum(engine: Engine) -> None:
    """Clear the dead rows earlier runs left (the writer's tasks, login tokens), as autovacuum
    would in production. Without it, a server run with autovacuum off (CI's is) piles them up
    run after run, and every lookup of a row rewritten thousands of times walks all its old
    versions: the writer's row once took 2 ms to read instead of 0.1 ms. SQLite keeps no old
    versions to clear."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _seeded(url: str, size: int) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).exists():
            return False
    elif not _postgres_database_exists(url):
        return False
    engine = create_engine_for(url)
    try:
        if not inspect(engine).has_table("tasks"):
            return False
        with engine.connect() as connection:
            users = connection.scalar(select(func.count()).select_from(User))
            owner = connection.scalar(select(User.id).where(User.email == OWNER_EMAIL))
        return users == size and owner is not None
    finally:
        engine.dispose()


def _server(url: str) -> Engine:
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _postgres_database_exists(url: str) -> bool:
    admin = _server(url)
    try:
        with admin.connect() as connection:
            found = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": make_url(url).database},
            )
        return found is not None
    finally:
        admin.dispose()


def _recreate(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database
        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = _server(url)
    try:
        with admin.connect() as connection:
            name = parsed.database
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def _seed(engine: Engine, size: int) -> None:
    # One hash for every account (argon2 at production cost takes ~0.1 s each); the servers
    # use the same profile, so logging in never triggers a rehash.
    profile = os.environ.get("PASSWORD_HASH_PROFILE", "RFC_9106_LOW_MEMORY")
    password_hash = PasswordHasher.from_parameters(getattr(profiles, profile)).hash(PASSWORD)
    rng = random.Random(0)
    user_ids = [_uuid7(_EPOCH + timedelta(seconds=i), rng) for i in range(size)]
    if engine.dialect.name == "postgresql":
        _copy(engine, User, _users(user_ids, password_hash))
        _copy(engine, Task, _tasks(user_ids, size))
        with engine.begin() as connection:
            _recount(connection)
        return
    with engine.begin() as connection:
        for model, rows in (
            (User, _users(user_ids, password_hash)),
            (Task, _tasks(user_ids, size)),
        ):
            columns = list(model.__table__.columns.keys())
            for batch in _batches(rows):
                connection.execute(
                    insert(model), [dict(zip(columns, r, strict=True)) for r in batch]
                )
        _recount(connection)


def _recount(connection: Connection) -> None:
    """Each user's kept task count (taskapi.services.task_counts), for rows inserted in bulk:
    all of it in the user's first share."""
    owned = select(Task.owner_id, literal(0), func.count()).group_by(Task.owner_id)
    connection.execute(insert(TaskCount).from_select(["owner_id", "share", "count"], owned))


def _copy(engine: Engine, model: type[User] | type[Task], rows: Iterator[tuple[Any, ...]]) -> None:
    from psycopg.types.json import Jsonb  # noqa: PLC0415 (PostgreSQL only)

    columns = list(model.__table__.columns.keys())
    tags = columns.index("tags") if "tags" in columns else None
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            statement = f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    if tags is not None:
                        row = (*row[:tags], Jsonb(row[tags]), *row[tags + 1 :])  # noqa: PLW2901
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _batches(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _users(user_ids: list[uuid.UUID], password_hash: str) -> Iterator[tuple[Any, ...]]:
    for i, user_id in enumerate(user_ids):
        email = (OWNER_EMAIL, WRITER_EMAIL)[i] if i < 2 else f"user{i}@bench.example"  # noqa: PLR2004
        created = _EPOCH + timedelta(seconds=i)
        # Columns in table order: id, email, name, age, role, password_hash, token_version,
        # created_at, updated_at.
        yield (user_id, email, f"Bench User {i}", 30, "user", password_hash, 0, created, created)


def _tasks(user_ids: list[uuid.UUID], size: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(size)
    others = user_ids[2:] or user_ids[:1]
    for j in range(size):
        # Every other row is the owner's (OWNER_SHARE = 0.5); the rest go round the others.
        mine = int((j + 1) * OWNER_SHARE) > int(j * OWNER_SHARE)
        owner = user_ids[0] if mine else others[j % len(others)]
        created = _EPOCH + timedelta(seconds=j, microseconds=rng.randrange(1_000_000))
        status = _STATUSES[j % 3]
        priority = _PRIORITIES[j % 4]
        due = date(2026, 1, 1) + timedelta(days=j % 365) if j % 5 else None
        # Columns in table order: id, owner_id, title, description, status, priority,
        # priority_rank, due_date, tags, created_at, updated_at, completed_at, version.
        yield (
            _uuid7(created, rng),
            owner,
            f"Task number {j}",
            None if j % 4 else f"Description of task {j}",
            status,
            priority,
            PRIORITY_RANKS[priority],
            due,
            _TAGS[j % len(_TAGS)],
            created,
            created,
            created if status == "done" else None,
            1,
        )


def _uuid7(moment: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 for `moment` (as taskapi.models.base.new_id makes them), reproducibly."""
    value = (int(moment.timestamp() * 1000) & 0xFFFF_FFFF_FFFF) << 80 | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


def _fixture(engine: Engine, url: str, size: int) -> Fixture:
    with engine.connect() as connection:
        owner = connection.scalar(select(User.id).where(User.email == OWNER_EMAIL))
        writer = connection.scalar(select(User.id).where(User.email == WRITER_EMAIL))
        count = connection.scalar(select(func.count()).where(Task.owner_id == owner)) or 0
        sample = connection.scalar(
            select(Task.id).where(Task.owner_id == owner).order_by(Task.id).offset(count // 2)
        )
    if owner is None or writer is None or sample is None:
        raise SystemExit(f"{_safe(url)} was not seeded by bench.seed: remove it and run again")
    return Fixture(
        url=url,
        size=size,
        owner_id=owner,
        writer_id=writer,
        owner_tasks=count,
        sample_task_id=sample,
    )


def position_of(url: str, *, owner_id: uuid.UUID, offset: int) -> tuple[datetime, uuid.UUID]:
    """The sort key (created_at, id) of the owner's task at `offset` in the default listing
    order (newest first): a cursor made from it starts the slice just after that row."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(Task.created_at, Task.id)
                .where(Task.owner_id == owner_id)
                .order_by(Task.created_at.desc(), Task.id.desc())
                .offset(offset)
                .limit(1)
            ).one()
        return row.created_at, row.id
    finally:
        engine.dispose()
