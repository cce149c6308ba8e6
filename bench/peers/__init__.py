"""Reference peers: the same endpoints, responses and tables as taskapi, in other frameworks.

`fastapi_app` is idiomatic FastAPI + Pydantic v2 (validation on); `starlette_app` is raw
Starlette with no validation, the floor. Below the framework both use `common`: the same
SQLAlchemy models and engine settings as taskapi, the same queries, the same bearer tokens and
the same signed cursors, so that the three differ only in their web layer.
"""
