"""Deprecation from the spec: a test spec marks an operation and a parameter deprecated, and
the edge built from it announces them (RFC 9745 Deprecation, RFC 8594 Sunset, a Link to
the replacement) on exactly the responses they concern."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from taskapi.app import edge
from taskapi.settings import Settings
from taskapi.spec import load_spec
from taskapi.web.deprecation import Deprecations
from taskapi.web.metrics import Metrics
from tests.utils.policies import auth_policy

# 2026-12-01T00:00:00Z
DEPRECATED_AT = 1796083200


def deprecated_spec() -> dict[str, Any]:
    spec = copy.deepcopy(load_spec())
    spec["paths"]["/users/me"]["get"].update(
        {
            "deprecated": True,
            "x-deprecated-at": "2026-12-01",
            "x-sunset": "2027-06-30",
            "x-replaced-by": "/v1/users/{user_id}",
        }
    )
    spec["paths"]["/tasks"]["get"]["parameters"].append(
        {
            "name": "q_old",
            "in": "query",
            "deprecated": True,
            "x-deprecated-at": "2026-12-01",
            "x-sunset": "2027-03-31",
            "schema": {"type": "string", "maxLength": 10},
        }
    )
    return spec


def echo(request: Request) -> Response:
    return Response("{}", headers={"Link": '</v1/tasks?page=2>; rel="next"'})


@pytest.fixture
def deprecating() -> Iterator[TestClient]:
    inner = Starlette(routes=[Route("/v1/{path:path}", echo, methods=["GET", "POST"])])
    policy = auth_policy()
    layer = edge(
        Settings(), deprecated_spec(), policy=policy, metrics=Metrics(enabled=False), state={}
    )
    yield TestClient(layer(inner))
    policy.throttle.close()


def test_a_deprecated_operation_announces_deprecation_sunset_and_its_successor(
    deprecating: TestClient,
) -> None:
    response = deprecating.get("/v1/users/me")

    assert response.headers["Deprecation"] == f"@{DEPRECATED_AT}"
    assert response.headers["Sunset"] == "Wed, 30 Jun 2027 23:59:59 GMT"
    assert response.headers["Link"] == (
        '</v1/tasks?page=2>; rel="next", </v1/users/{user_id}>; rel="successor-version"'
    )


def test_a_deprecated_parameter_is_announced_only_when_it_is_sent(deprecating: TestClient) -> None:
    sent = deprecating.get("/v1/tasks?q_old=x")
    not_sent = deprecating.get("/v1/tasks?q=x")

    assert sent.headers["Deprecation"] == f"@{DEPRECATED_AT}"
    assert sent.headers["Sunset"] == "Wed, 31 Mar 2027 23:59:59 GMT"
    assert "Deprecation" not in not_sent.headers
    assert not_sent.headers["Link"] == '</v1/tasks?page=2>; rel="next"'


def test_operations_not_deprecated_and_other_methods_are_left_alone(
    deprecating: TestClient,
) -> None:
    assert "Deprecation" not in deprecating.get("/v1/users/abc").headers
    assert "Deprecation" not in deprecating.post("/v1/users/me").headers


def test_a_deprecation_without_its_date_stops_the_app_from_starting() -> None:
    spec = deprecated_spec()
    del spec["paths"]["/users/me"]["get"]["x-deprecated-at"]

    with pytest.raises(ValueError, match="x-deprecated-at"):
        Deprecations(spec)


def test_the_service_announces_nothing_while_its_spec_deprecates_nothing(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.get("/v1/users/me", headers=user_headers)

    assert response.status_code == 200
    assert "Deprecation" not in response.headers
