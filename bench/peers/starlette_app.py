"""The raw Starlette peer: routing, the same queries and the same JSON, and no validation at all.

It is the floor: what serving these responses costs with the least framework on top. Sync
endpoints (Starlette runs them in its thread pool, as taskapi's handlers are; those with a body
read it on the event loop first), stdlib `json`
through `JSONResponse`. Served by `uvicorn --factory bench.peers.starlette_app:from_env`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.peers import common
from taskapi.services.auth import Caller
from taskapi.settings import Settings


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _user(backend: common.Backend, session: Session, request: Request) -> Caller:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise common.UnauthorizedError
    return common.user_for_token(backend, session, token)


def create_app(settings: Settings) -> Starlette:
    backend = common.Backend(settings)

    def get_task(request: Request) -> Response:
        with backend.session() as session:
            try:
                user = _user(backend, session, request)
                task = common.get_task(
                    session, owner_id=user.id, task_id=request.path_params["task_id"]
                )
            except common.UnauthorizedError:
                return _error(401, "The token is not valid.")
            except common.NotFoundError:
                return _error(404, "No task has this id.")
            return JSONResponse(common.task_resource(task), headers={"ETag": common.etag(task)})

    def list_tasks(request: Request) -> Response:
        params = request.query_params
        limit = int(params.get("limit", 20))
        with backend.session() as session:
            try:
                user = _user(backend, session, request)
            except common.UnauthorizedError:
                return _error(401, "The token is not valid.")
            if "cursor" not in params:
                page = int(params.get("page", 1))
                items, total = common.list_page(session, owner_id=user.id, page=page, limit=limit)
                meta, links = common.page_meta_and_links(page=page, limit=limit, total=total)
                body: dict[str, Any] = {"mode": "page", "meta": meta, "links": links}
                headers = {"Link": common.link_header(links)}
            else:
                cursor = params["cursor"]
                try:
                    items, next_cursor = common.list_slice(
                        backend, session, owner_id=user.id, limit=limit, cursor=cursor
                    )
                except common.BadCursorError:
                    return _error(400, "The cursor is not valid.")
                links = common.slice_links(limit=limit, cursor=cursor, next_cursor=next_cursor)
                body = {"mode": "cursor", "meta": {"limit": limit}, "links": links}
                headers = {"Link": f'<{links["next"]}>; rel="next"'} if links["next"] else {}
            data = [common.task_resource(task) for task in items]
            return JSONResponse({"data": data, **body}, headers=headers)

    async def create_task(request: Request) -> Response:
        # The body is read on the event loop; the database work runs in the thread pool.
        return await run_in_threadpool(insert_task, request, await request.json())

    def insert_task(request: Request, fields: dict[str, Any]) -> Response:
        if isinstance(fields.get("due_date"), str):
            fields["due_date"] = date.fromisoformat(fields["due_date"])
        with backend.session(writes=True) as session:
            try:
                user = _user(backend, session, request)
            except common.UnauthorizedError:
                return _error(401, "The token is not valid.")
            task = common.create_task(session, owner_id=user.id, **fields)
            session.commit()
            headers = {"Location": f"{common.TASKS_PATH}/{task.id}", "ETag": common.etag(task)}
            return JSONResponse(common.task_resource(task), status_code=201, headers=headers)

    async def create_token(request: Request) -> Response:
        return await run_in_threadpool(log_in, await request.json())

    def log_in(credentials: dict[str, Any]) -> Response:
        with backend.session(writes=True) as session:
            pair = common.log_in(
                backend, session, email=credentials["email"], password=credentials["password"]
            )
            if pair is None:
                return _error(401, "The email or password is wrong.")
            session.commit()
        return JSONResponse(pair, headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/v1/tasks", list_tasks, methods=["GET"]),
            Route("/v1/tasks", create_task, methods=["POST"]),
            Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
            Route("/v1/auth/token", create_token, methods=["POST"]),
        ]
    )


def from_env() -> Starlette:
    """The app configured from the environment (`uvicorn --factory`), like taskapi.asgi."""
    return create_app(Settings.from_env())
