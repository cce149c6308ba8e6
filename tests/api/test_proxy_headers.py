"""X-Forwarded-For and -Proto count only when the peer is a configured proxy."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database
from taskapi.settings import Settings

FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


def _client_seen(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> str | None:
    app = create_app(settings, database=database)
    with TestClient(app) as client, caplog.at_level("INFO", logger="taskapi.access"):
        assert client.get("/v1/healthz", headers=FORWARDED).status_code == 200
    (record,) = [r for r in caplog.records if r.name == "taskapi.access"]
    return record.__dict__["client"]


def test_forwarded_headers_from_an_unknown_peer_are_ignored(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    assert _client_seen(settings, database, caplog) == "testclient"


def test_forwarded_headers_from_a_trusted_proxy_name_the_real_client(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # Behind a proxy the metrics need their token (Settings refuses to start otherwise).
    trusted = dataclasses.replace(
        settings, forwarded_allow_ips=("testclient",), metrics_token="m" * 32
    )

    assert _client_seen(trusted, database, caplog) == "203.0.113.7"
