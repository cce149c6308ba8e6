"""Handlers for the /auth operations."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from taskapi.services import auth as auth_service
from taskapi.services.auth import AuthPolicy, Caller, TokenPair
from taskapi.services.tokens import AccessClaims
from taskapi.web.responses import empty_reply, json_reply


def token_pair_resource(pair: TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
    }


def create_token(
    *, session: Session, auth: AuthPolicy, client: str, body: dict[str, Any]
) -> Response:
    pair = auth_service.login(
        session=session, policy=auth, email=body["email"], password=body["password"], client=client
    )
    return json_reply(token_pair_resource(pair))


def refresh_token(
    *, session: Session, auth: AuthPolicy, client: str, body: dict[str, Any]
) -> Response:
    pair = auth_service.refresh(
        session=session, policy=auth, refresh_token=body["refresh_token"], client=client
    )
    return json_reply(token_pair_resource(pair))


def revoke_token(
    *, session: Session, caller: Caller, access_claims: AccessClaims, body: dict[str, Any]
) -> Response:
    auth_service.logout(
        session=session,
        caller=caller,
        claims=access_claims,
        refresh_token=body["refresh_token"],
    )
    return empty_reply()
