"""What the service shows besides the API: metrics and the docs UI, each switchable, and the
UI's page locked to its own code."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from starlette.testclient import TestClient

from taskapi.app import create_app
from taskapi.db import Database
from taskapi.settings import Settings


def app_with(settings: Settings, database: Database, **changes: Any) -> TestClient:
    return create_app(Settings(**{**settings.__dict__, **changes}), database=database).test_client()


def sha256(code: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code).digest()).decode() + "'"


def test_swagger_ui_page_may_run_only_its_own_assets_and_inline_code(client: TestClient) -> None:
    page = client.get("/v1/ui/")

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    inline_scripts = re.findall(rb"<script>(.*?)</script>", page.content, re.DOTALL)
    inline_styles = re.findall(rb"<style>(.*?)</style>", page.content, re.DOTALL)
    assert policy["default-src"] == "'none'"
    assert policy["script-src"].split() == ["'self'", *map(sha256, inline_scripts)]
    assert policy["style-src"].split() == ["'self'", *map(sha256, inline_styles)]
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert len(inline_scripts) == len(inline_styles) == 1


def test_the_ui_assets_are_served_from_the_service(client: TestClient) -> None:
    page = client.get("/v1/ui/").text

    for asset in re.findall(r'(?:src|href)="\./([^"]+)"', page):
        assert client.get(f"/v1/ui/{asset}").status_code == 200, asset


def test_docs_ui_switched_off_is_not_served_but_the_spec_is(
    settings: Settings, database: Database
) -> None:
    with app_with(settings, database, docs_ui_enabled=False) as client:
        assert client.get("/v1/ui/").status_code == 404
        assert client.get("/v1/openapi.json").status_code == 200


def test_metrics_switched_off_answer_404(settings: Settings, database: Database) -> None:
    with app_with(settings, database, metrics_enabled=False) as client:
        client.get("/v1/healthz")
        response = client.get("/v1/metrics")

    assert response.status_code == 404
    assert response.json()["type"] == "tag:taskapi.dev,2026:problem/not-found"


def test_metrics_with_a_token_refuse_scrapers_without_it(
    settings: Settings, database: Database
) -> None:
    token = "a-metrics-token-that-is-long-enough-000"
    with app_with(settings, database, metrics_token=token) as client:
        refused = client.get("/v1/metrics")
        scraped = client.get("/v1/metrics", headers={"Authorization": f"Bearer {token}"})

    assert refused.status_code == 401
    assert "taskapi_http_requests_total" in scraped.text
