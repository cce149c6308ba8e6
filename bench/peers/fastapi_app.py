"""The FastAPI + Pydantic v2 peer, written the way FastAPI's documentation teaches.

Sync endpoints (run in the thread pool, as taskapi's handlers are), dependencies for the session
and the current user, `HTTPBearer` security, Pydantic models for every body, query parameter and
response (validated both ways). Served by `uvicorn --factory bench.peers.fastapi_app:from_env`.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run
# time, and they name dependencies built inside create_app.
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy.orm import Session

from bench.peers import common
from taskapi.models import Task
from taskapi.services.auth import Caller
from taskapi.settings import Settings

Status = Literal["todo", "in_progress", "done"]
Priority = Literal["low", "medium", "high", "urgent"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str | None
    status: Status
    priority: Priority
    due_date: date | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    status: Status = "todo"
    priority: Priority = "medium"
    due_date: date | None = None
    tags: Annotated[list[Tag], Field(max_length=10)] = []

    @field_validator("title")
    @classmethod
    def title_not_blank(cls, title: str) -> str:
        if not title.strip():
            raise ValueError("must contain a character that is not white space")
        return title

    @field_validator("tags")
    @classmethod
    def tags_unique(cls, tags: list[str]) -> list[str]:
        if len(set(tags)) != len(tags):
            raise ValueError("tags must be unique")
        return tags


class PageMeta(BaseModel):
    page: int
    limit: int
    total: int
    pages: int


class PageLinks(BaseModel):
    self: str
    first: str
    prev: str | None
    next: str | None
    last: str


class TaskPage(BaseModel):
    mode: Literal["page"] = "page"
    data: list[TaskOut]
    meta: PageMeta
    links: PageLinks


class SliceMeta(BaseModel):
    limit: int


class SliceLinks(BaseModel):
    self: str
    next: str | None


class TaskSlice(BaseModel):
    mode: Literal["cursor"] = "cursor"
    data: list[TaskOut]
    meta: SliceMeta
    links: SliceLinks


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str


def create_app(settings: Settings) -> FastAPI:
    backend = common.Backend(settings)
    bearer = HTTPBearer()

    def get_session(request: Request) -> Iterator[Session]:
        # Like taskapi: a request that may write takes SQLite's write lock at BEGIN.
        with backend.session(writes=request.method not in SAFE_METHODS) as session:
            yield session

    def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
        session: Annotated[Session, Depends(get_session)],
    ) -> Caller:
        try:
            return common.user_for_token(backend, session, credentials.credentials)
        except common.UnauthorizedError:
            raise HTTPException(status_code=401, detail="The token is not valid.") from None

    DbSession = Annotated[Session, Depends(get_session)]  # noqa: N806 (type aliases)
    CurrentUser = Annotated[Caller, Depends(current_user)]  # noqa: N806
    router = APIRouter(prefix="/v1")

    @router.get("/tasks/{task_id}", response_model=TaskOut)
    def get_task(
        task_id: Annotated[str, Path(max_length=64)],
        user: CurrentUser,
        session: DbSession,
        response: Response,
    ) -> Task:
        try:
            task = common.get_task(session, owner_id=user.id, task_id=task_id)
        except common.NotFoundError:
            raise HTTPException(status_code=404, detail="No task has this id.") from None
        response.headers["ETag"] = common.etag(task)
        return task

    @router.get("/tasks", response_model=TaskPage | TaskSlice)
    def list_tasks(
        *,
        user: CurrentUser,
        session: DbSession,
        response: Response,
        # Validated like taskapi's; the peers implement the default order only.
        sort: Literal["-created_at"] = "-created_at",  # noqa: ARG001
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        page: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
        cursor: Annotated[str | None, Query(max_length=2048, pattern=r"^[A-Za-z0-9_.-]*$")] = None,
    ) -> TaskPage | TaskSlice:
        if page is not None and cursor is not None:
            raise HTTPException(status_code=400, detail="page and cursor cannot be combined")
        if cursor is None:
            items, total = common.list_page(session, owner_id=user.id, page=page or 1, limit=limit)
            meta, links = common.page_meta_and_links(page=page or 1, limit=limit, total=total)
            response.headers["Link"] = common.link_header(links)
            return TaskPage.model_validate({"data": items, "meta": meta, "links": links})
        try:
            found, next_cursor = common.list_slice(
                backend, session, owner_id=user.id, limit=limit, cursor=cursor
            )
        except common.BadCursorError:
            raise HTTPException(status_code=400, detail="The cursor is not valid.") from None
        slice_links = common.slice_links(limit=limit, cursor=cursor, next_cursor=next_cursor)
        if slice_links["next"]:
            response.headers["Link"] = f'<{slice_links["next"]}>; rel="next"'
        body = {"data": found, "meta": {"limit": limit}, "links": slice_links}
        return TaskSlice.model_validate(body)

    @router.post("/tasks", response_model=TaskOut, status_code=201)
    def create_task(
        task_in: TaskIn,
        user: CurrentUser,
        session: DbSession,
        response: Response,
    ) -> Task:
        task = common.create_task(session, owner_id=user.id, **task_in.model_dump())
        session.commit()
        response.headers["Location"] = f"{common.TASKS_PATH}/{task.id}"
        response.headers["ETag"] = common.etag(task)
        return task

    @router.post("/auth/token", response_model=TokenPair)
    def create_token(
        credentials: Credentials,
        session: DbSession,
        response: Response,
    ) -> dict[str, object]:
        pair = common.log_in(
            backend, session, email=credentials.email, password=credentials.password
        )
        if pair is None:
            raise HTTPException(status_code=401, detail="The email or password is wrong.")
        session.commit()
        response.headers["Cache-Control"] = "no-store"
        return pair

    app = FastAPI(title="taskapi peer: FastAPI")
    app.include_router(router)
    return app


def from_env() -> FastAPI:
    """The app configured from the environment (`uvicorn --factory`), like taskapi.asgi."""
    return create_app(Settings.from_env())
