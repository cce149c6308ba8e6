"""Schemathesis CLI hooks for the live contract run (`make contract-live`).

Every case is sent as the admin that tools/live_service.py made, so it reaches every
operation. Generated cases may delete that account (`DELETE /users/me`) or revoke its tokens;
the next login then fails, and the admin is made again the way an operator does
(`taskapi create-admin`), so later cases still test the operation rather than a 401.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import schemathesis

TASKAPI = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "taskapi"


def _log_in(base_url: str, email: str, password: str) -> httpx.Response:
    body = {"email": email, "password": password}
    return httpx.post(f"{base_url}/auth/token", json=body, timeout=30)


@schemathesis.auth(refresh_interval=300)
class AdminToken:
    """An admin's access token, fetched again when a response says it stopped working."""

    def get(self, case: schemathesis.Case[Any], context: Any) -> str:
        base_url = os.environ["TASKAPI_URL"]
        email, password = os.environ["TASKAPI_ADMIN_EMAIL"], os.environ["TASKAPI_ADMIN_PASSWORD"]
        response = _log_in(base_url, email, password)
        if response.status_code == httpx.codes.UNAUTHORIZED:
            subprocess.run(  # noqa: S603 - our own command line, same environment as the service
                [str(TASKAPI), "create-admin", "--email", email, "--password-stdin"],
                input=f"{password}\n".encode(),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            response = _log_in(base_url, email, password)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def set(self, case: schemathesis.Case[Any], data: str, context: Any) -> None:
        case.headers["Authorization"] = f"Bearer {data}"
