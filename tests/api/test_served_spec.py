"""The spec as the service serves it: spec/openapi.yaml itself, as YAML and as JSON, so that
generators and linters pointed at the URL see the document as written."""

from __future__ import annotations

import json
import re

import yaml
from starlette.testclient import TestClient

from taskapi.settings import Settings
from taskapi.spec import load_spec, spec_text


def test_served_yaml_is_the_spec_file_byte_for_byte(client: TestClient) -> None:
    response = client.get("/v1/openapi.yaml")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.text == spec_text()


def test_served_json_is_the_spec_with_its_refs_and_components_intact(client: TestClient) -> None:
    response = client.get("/v1/openapi.json")

    assert response.status_code == 200
    assert response.json() == load_spec()
    assert '"$ref":"#/components/schemas/TaskList"' in response.text


def test_served_spec_names_no_python_module(client: TestClient) -> None:
    served = client.get("/v1/openapi.json").text

    assert not re.search(r"taskapi\.(handlers|web|services)\.", served)
    assert "x-bearerInfoFunc" not in served
    assert yaml.safe_load(client.get("/v1/openapi.yaml").text) == json.loads(served)


def test_served_spec_answers_head_and_refuses_writes(client: TestClient) -> None:
    assert client.head("/v1/openapi.json").status_code == 200
    assert client.post("/v1/openapi.json").status_code in {404, 405}


def test_operation_ids_are_plain_function_names(client: TestClient) -> None:
    operation_ids = [
        operation["operationId"]
        for item in client.get("/v1/openapi.json").json()["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]

    assert operation_ids
    assert all(re.fullmatch(r"[a-z][a-z_]*", name) for name in operation_ids), operation_ids


def test_the_server_defaults_reach_the_service_as_make_run_starts_it() -> None:
    server = load_spec()["servers"][0]
    defaults = {name: variable["default"] for name, variable in server["variables"].items()}
    settings = Settings()

    assert server["url"].format(**defaults) == f"http://{settings.host}:{settings.port}/v1"
