"""The breaking-change gate: each kind of break it must catch, and what it must let through."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.breaking_changes import find_breaking_changes, find_undeprecated_removals, main

REPO = Path(__file__).resolve().parents[2]


def spec_of(**extra_properties: Any) -> dict[str, Any]:
    """A small spec: one public list with a query parameter, one create with a body, refs."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1.2.0"},
        "security": [{"bearer": []}],
        "paths": {
            "/things": {
                "get": {
                    "security": [],
                    "parameters": [{"$ref": "#/components/parameters/Limit"}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Thing"},
                                    }
                                }
                            },
                        }
                    },
                },
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ThingCreate"}
                            }
                        },
                    },
                    "responses": {"201": {"description": "created"}},
                },
            },
            "/things/{thing_id}": {
                "delete": {
                    "parameters": [
                        {"name": "thing_id", "in": "path", "required": True, "schema": {}}
                    ],
                    "responses": {"204": {"description": "gone"}},
                }
            },
        },
        "components": {
            "parameters": {
                "Limit": {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                }
            },
            "schemas": {
                "ThingCreate": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 100},
                        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
                        "note": {"type": "string", "nullable": True},
                        **extra_properties,
                    },
                },
                "Thing": {
                    "allOf": [
                        {"$ref": "#/components/schemas/ThingCreate"},
                        {
                            "type": "object",
                            "required": ["id", "colour"],
                            "properties": {"id": {"type": "string"}},
                        },
                    ]
                },
            },
        },
    }


def changed(edit: Any) -> list[str]:
    base = spec_of()
    head = copy.deepcopy(base)
    edit(head)
    return find_breaking_changes(base, head)


def schemas(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def test_identical_specs_have_no_breaking_changes() -> None:
    assert changed(lambda _spec: None) == []


def test_removed_operation_is_breaking() -> None:
    assert changed(lambda spec: spec["paths"]["/things"].pop("post")) == [
        "POST /things: operation removed"
    ]


def test_renamed_path_parameter_is_not_a_removed_operation() -> None:
    def rename(spec: dict[str, Any]) -> None:
        item = spec["paths"].pop("/things/{thing_id}")
        item["delete"]["parameters"][0]["name"] = "id"
        spec["paths"]["/things/{id}"] = item

    assert changed(rename) == []


def test_removed_response_field_is_breaking() -> None:
    def drop_id(spec: dict[str, Any]) -> None:
        del schemas(spec)["Thing"]["allOf"][1]["properties"]["id"]

    assert "GET /things: response 200[]: field 'id' removed" in changed(drop_id)


def test_response_field_no_longer_required_is_breaking() -> None:
    def optional_colour(spec: dict[str, Any]) -> None:
        schemas(spec)["Thing"]["allOf"][1]["required"] = ["id"]

    assert changed(optional_colour) == [
        "GET /things: response 200[]: field 'colour' is no longer always present"
    ]


def test_removed_input_field_is_breaking_when_unknown_fields_are_refused() -> None:
    def drop_note(spec: dict[str, Any]) -> None:
        del schemas(spec)["ThingCreate"]["properties"]["note"]

    assert "POST /things: request body: field 'note' removed" in changed(drop_note)


def test_removed_enum_value_in_an_input_is_breaking() -> None:
    def no_blue(spec: dict[str, Any]) -> None:
        schemas(spec)["ThingCreate"]["properties"]["colour"]["enum"] = ["red", "green"]

    assert changed(no_blue) == ["POST /things: request body.colour: enum values removed: ['blue']"]


def test_added_enum_value_in_an_input_is_compatible() -> None:
    def more(spec: dict[str, Any]) -> None:
        schemas(spec)["ThingCreate"]["properties"]["colour"]["enum"].append("black")

    assert changed(more) == []


@pytest.mark.parametrize(
    ("keyword", "value"), [("maxLength", 50), ("minLength", 2), ("pattern", "^[a-z]+$")]
)
def test_tightened_input_constraint_is_breaking(keyword: str, value: Any) -> None:
    def tighten(spec: dict[str, Any]) -> None:
        schemas(spec)["ThingCreate"]["properties"]["name"][keyword] = value

    assert len(changed(tighten)) == 1
    assert f"name: {keyword}" in changed(tighten)[0]


def test_loosened_input_constraint_is_compatible() -> None:
    def loosen(spec: dict[str, Any]) -> None:
        schemas(spec)["ThingCreate"]["properties"]["name"]["maxLength"] = 200
        spec["components"]["parameters"]["Limit"]["schema"]["maximum"] = 500

    assert changed(loosen) == []


def test_tightened_parameter_bound_is_breaking() -> None:
    def tighten(spec: dict[str, Any]) -> None:
        spec["components"]["parameters"]["Limit"]["schema"]["maximum"] = 50

    assert changed(tighten) == ["GET /things: query parameter 'limit': maximum tightened to 50"]


def test_input_no_longer_nullable_is_breaking() -> None:
    def not_null(spec: dict[str, Any]) -> None:
        del schemas(spec)["ThingCreate"]["properties"]["note"]["nullable"]

    assert "POST /things: request body.note: no longer accepts null" in changed(not_null)


def test_new_required_input_field_is_breaking_and_optional_one_is_not() -> None:
    base = spec_of()
    assert find_breaking_changes(base, spec_of(size={"type": "integer"})) == []
    required = spec_of(size={"type": "integer"})
    schemas(required)["ThingCreate"]["required"].append("size")
    assert "POST /things: request body: field 'size' is now required" in (
        find_breaking_changes(base, required)
    )


def test_new_required_parameter_is_breaking() -> None:
    def require_tag(spec: dict[str, Any]) -> None:
        spec["paths"]["/things"]["get"]["parameters"].append(
            {"name": "tag", "in": "query", "required": True, "schema": {"type": "string"}}
        )

    assert changed(require_tag) == ["GET /things: new required query parameter 'tag'"]


def test_public_operation_requiring_authentication_is_breaking() -> None:
    assert changed(lambda spec: spec["paths"]["/things"]["get"].pop("security")) == [
        "GET /things: now requires authentication"
    ]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)  # noqa: S603, S607


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding the small spec and a changelog, with no tags yet."""
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "openapi.yaml").write_text(yaml.safe_dump(spec_of()))
    (tmp_path / "spec" / "CHANGELOG.md").write_text("## 2.0.0\n\n## 1.3.0\n\n## 1.2.0\n")
    git(tmp_path, "init", "-q")
    git(
        tmp_path,
        "-c",
        "user.email=a@b.c",
        "-c",
        "user.name=t",
        "commit",
        "-qam",
        "x",
        "--allow-empty",
    )
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-qm", "spec")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPEC_BASE_REF", raising=False)
    return tmp_path


def release_then_edit(repo: Path, *, version: str, deprecated_first: bool = True) -> None:
    """Release the small spec (with POST /things deprecated, or not), then remove POST /things."""
    released = spec_of()
    released["paths"]["/things"]["post"]["deprecated"] = deprecated_first
    (repo / "spec" / "openapi.yaml").write_text(yaml.safe_dump(released))
    git(repo, "-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-qam", "release")
    git(repo, "tag", "v1.2.0")
    spec = spec_of()
    spec["info"]["version"] = version
    del spec["paths"]["/things"]["post"]
    (repo / "spec" / "openapi.yaml").write_text(yaml.safe_dump(spec))


def test_gate_passes_and_says_so_without_a_release_tag(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 0
    assert "no release tag" in capsys.readouterr().out


def test_gate_fails_on_a_break_since_the_last_release(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release_then_edit(repo, version="1.3.0")
    assert main([]) == 1
    assert "POST /things: operation removed" in capsys.readouterr().out


def test_gate_passes_a_break_with_a_major_version_raise(repo: Path) -> None:
    release_then_edit(repo, version="2.0.0")
    assert main([]) == 0


def test_gate_refuses_removing_an_operation_the_release_had_not_deprecated_even_with_a_major_raise(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release_then_edit(repo, version="2.0.0", deprecated_first=False)
    assert main([]) == 1
    assert "POST /things: operation removed without being deprecated first" in (
        capsys.readouterr().out
    )


def test_removing_a_deprecated_operation_or_parameter_is_not_refused() -> None:
    base = spec_of()
    base["paths"]["/things"]["post"]["deprecated"] = True
    base["components"]["parameters"]["Limit"]["deprecated"] = True
    head = copy.deepcopy(base)
    del head["paths"]["/things"]["post"]
    head["paths"]["/things"]["get"]["parameters"] = []

    assert find_undeprecated_removals(base, head) == []
    assert find_breaking_changes(base, head)  # still breaking: it needs the major raise


def test_removing_a_parameter_that_was_not_deprecated_is_refused() -> None:
    head = spec_of()
    head["paths"]["/things"]["get"]["parameters"] = []

    assert find_undeprecated_removals(spec_of(), head) == [
        "GET /things: query parameter 'limit' removed without being deprecated first"
    ]


def test_gate_needs_a_changelog_section_for_the_version(repo: Path) -> None:
    (repo / "spec" / "CHANGELOG.md").write_text("## 1.1.0\n")
    assert main([]) == 1


def test_the_project_spec_is_read_and_compatible_with_itself() -> None:
    """The real spec: every $ref (into properties too) resolves and nothing differs."""
    spec = yaml.safe_load((REPO / "spec" / "openapi.yaml").read_text())
    assert find_breaking_changes(spec, copy.deepcopy(spec)) == []
