"""Request ids travel from the client to the response and every log line; secrets never do."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from taskapi.logging_conf import redact_text
from taskapi.services import users
from taskapi.web.headers import LOGGED_HEADER_CHARS
from tests.utils.factories import user_payload


def test_well_formed_request_id_is_kept_and_echoed(client: TestClient) -> None:
    response = client.post("/v1/users", json={}, headers={"X-Request-ID": "client-abc.123_x"})

    assert response.headers["x-request-id"] == "client-abc.123_x"


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 129, "semi;colon", "ünïcode"])
def test_malformed_request_id_is_replaced_by_a_generated_one(
    client: TestClient, bad_id: str
) -> None:
    response = client.post("/v1/users", json={}, headers={"X-Request-ID": bad_id.encode("utf-8")})

    generated = response.headers["x-request-id"]
    assert generated != bad_id
    assert len(generated) == 32


def test_each_request_gets_its_own_id(client: TestClient) -> None:
    first = client.get("/v1/users/me").headers["x-request-id"]
    second = client.get("/v1/users/me").headers["x-request-id"]

    assert first != second


def test_one_access_record_per_request_with_the_request_id(
    client: TestClient, admin_headers: dict[str, str], json_logs: Any
) -> None:
    response = client.get("/v1/users?limit=5", headers={**admin_headers, "User-Agent": "probe/1.0"})

    access = [r for r in json_logs() if r["logger"] == "taskapi.access"]
    assert len(access) == 1
    record = access[0]
    assert record["request_id"] == response.headers["x-request-id"]
    assert record["method"] == "GET"
    assert record["path"] == "/v1/users"
    assert record["route"] == "list_users"
    assert record["status"] == 200
    assert record["duration_ms"] >= 0
    assert record["user_agent"] == "probe/1.0"
    assert record["level"] == "INFO"
    assert record["timestamp"].endswith("+00:00")


def test_registration_never_logs_the_password(client: TestClient, json_logs: Any) -> None:
    payload = user_payload(password="Sup3r-Secret-Passw0rd!")
    logging.getLogger("taskapi.test").info(
        "payload seen", extra={"body": payload, "authorization": "Bearer abc.def"}
    )

    client.post("/v1/users", json=payload)
    client.post("/v1/users", json=payload)  # a conflict, logged as such

    output = json.dumps(json_logs())
    assert "Sup3r-Secret-Passw0rd!" not in output
    assert "abc.def" not in output
    assert "[REDACTED]" in output


def test_unhandled_exception_is_logged_once_with_traceback_under_its_request_id(
    client: TestClient,
    admin_headers: dict[str, str],
    json_logs: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(**_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(users, "get", explode)

    response = client.get("/v1/users/anything", headers=admin_headers)

    errors = [r for r in json_logs() if r["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == response.headers["x-request-id"]
    assert "Traceback" in errors[0]["exception"]
    assert "RuntimeError: boom" in errors[0]["exception"]


@pytest.mark.parametrize(
    "text",
    [
        'password="hunter2-hunter2"',
        "password=hunter2-hunter2&x=1",
        '{"password": "hunter2-hunter2"}',
        "Authorization: Bearer hunter2-hunter2",
        "refresh_token: hunter2-hunter2",
    ],
)
def test_secrets_in_free_text_are_redacted(text: str) -> None:
    assert "hunter2-hunter2" not in redact_text(text)


def test_a_long_user_agent_is_logged_cut_short(client: TestClient, json_logs: Any) -> None:
    client.get("/v1/healthz", headers={"User-Agent": "x" * 5000})

    record = next(r for r in json_logs() if r["logger"] == "taskapi.access")
    assert len(record["user_agent"]) == LOGGED_HEADER_CHARS
    assert record["user_agent"].endswith("…")
