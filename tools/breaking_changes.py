"""The breaking-change gate: is spec/openapi.yaml still compatible with the last release?

    python -m tools.breaking_changes [--base REF] [--spec spec/openapi.yaml]

The base is `--base` (or $SPEC_BASE_REF: a branch or commit, compared at its merge base with
HEAD), else the newest release tag (`v*`) reachable from HEAD. With neither, there is nothing
to be compatible with yet and the gate passes, saying so. It fails on any change that can break
a client written against the base unless `info.version`'s major part was raised, and on
removing an operation or a parameter that the base did not mark `deprecated: true` whatever
the version: clients are warned (Deprecation and Sunset headers) for a release before anything
they use goes away.

No maintained OpenAPI diff tool installs from PyPI or npm here (oasdiff and openapi-changes
ship as Go binaries fetched from elsewhere), so this is a small checker of the changes that
matter to this API's clients. Inputs are what clients send (parameters, request bodies), whose
constraints must not tighten; outputs are what they read (2xx bodies), whose fields must stay.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# A bound that, when added or moved this way, refuses inputs the base accepted.
UPPER_BOUNDS = ("maxLength", "maximum", "maxItems", "maxProperties")
LOWER_BOUNDS = ("minLength", "minimum", "minItems", "minProperties")
MAX_DEPTH = 32  # deep enough for any real schema; stops recursive ones


class Spec:
    """A parsed document with local `$ref`s followed on demand."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any) -> Any:
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                return {}
            seen.add(ref)
            node = self.document
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def operations(self) -> dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]:
        """(method, path with parameter names blanked) -> (operation, its path item)."""
        found = {}
        for path, ref in (self.document.get("paths") or {}).items():
            item = self.resolve(ref)
            for method in METHODS:
                if method in item:
                    found[(method, re.sub(r"\{[^}]*\}", "{}", path))] = (item[method], item)
        return found

    def flatten(self, schema: Any) -> Schema:
        """The schema with `allOf` merged in: enough for property-level comparison."""
        flat: Schema = dict(self.resolve(schema) or {})
        for part in flat.pop("allOf", []):
            for key, value in self.flatten(part).items():
                if key == "properties":
                    flat["properties"] = {**value, **flat.get("properties", {})}
                elif key == "required":
                    flat["required"] = sorted({*flat.get("required", []), *value})
                else:
                    flat.setdefault(key, value)
        return flat


def find_breaking_changes(base: dict[str, Any], head: dict[str, Any]) -> list[str]:
    """Every change from `base` to `head` that can break a client of `base`, in words."""
    return list(Comparison(Spec(base), Spec(head)).breaks())


def find_undeprecated_removals(base: dict[str, Any], head: dict[str, Any]) -> list[str]:
    """Operations and parameters `head` removes that `base` had not marked deprecated."""
    return list(Comparison(Spec(base), Spec(head)).undeprecated_removals())


class Comparison:
    """The base spec (`old`) against the proposed one (`new`), one operation at a time."""

    def __init__(self, old: Spec, new: Spec) -> None:
        self.old, self.new = old, new

    def breaks(self) -> Iterator[str]:
        new_operations = self.new.operations()
        for key, (old_op, old_item) in self.old.operations().items():
            where = f"{key[0].upper()} {key[1]}"
            if key not in new_operations:
                yield f"{where}: operation removed"
                continue
            new_op, new_item = new_operations[key]
            yield from self.security(where, old_op, new_op)
            yield from self.parameters(where, (old_op, old_item), (new_op, new_item))
            yield from self.request_body(where, old_op, new_op)
            yield from self.responses(where, old_op, new_op)

    def undeprecated_removals(self) -> Iterator[str]:
        new_operations = self.new.operations()
        for key, (old_op, old_item) in self.old.operations().items():
            where = f"{key[0].upper()} {key[1]}"
            if key not in new_operations:
                if not old_op.get("deprecated"):
                    yield f"{where}: operation removed without being deprecated first"
                continue
            if old_op.get("deprecated"):
                continue  # everything it takes goes with it
            new_params = _params(self.new, *new_operations[key])
            for (place, name), param in _params(self.old, old_op, old_item).items():
                if (place, name) not in new_params and not param.get("deprecated"):
                    yield (
                        f"{where}: {place} parameter {name!r} removed without being "
                        "deprecated first"
                    )

    def security(self, where: str, old_op: Any, new_op: Any) -> Iterator[str]:
        public: tuple[list[Any], ...] = ([], [{}])
        old_security = old_op.get("security", self.old.document.get("security", []))
        new_security = new_op.get("security", self.new.document.get("security", []))
        if old_security in public and new_security not in public:
            yield f"{where}: now requires authentication"

    def parameters(
        self, where: str, old_pair: tuple[Any, Any], new_pair: tuple[Any, Any]
    ) -> Iterator[str]:
        old_params, new_params = _params(self.old, *old_pair), _params(self.new, *new_pair)
        for (place, name), param in new_params.items():
            if param.get("required") and (place, name) not in old_params:
                yield f"{where}: new required {place} parameter {name!r}"
            elif param.get("required") and not old_params[(place, name)].get("required"):
                yield f"{where}: {place} parameter {name!r} became required"
        for (place, name), param in old_params.items():
            if (place, name) not in new_params:
                # Requests are validated strictly: a client still sending it would be refused.
                yield f"{where}: {place} parameter {name!r} removed"
                continue
            new_schema = new_params[(place, name)].get("schema")
            yield from self.input(
                f"{where}: {place} parameter {name!r}", param.get("schema"), new_schema
            )

    def request_body(self, where: str, old_op: Any, new_op: Any) -> Iterator[str]:
        old_body = self.old.resolve(old_op.get("requestBody")) or {}
        new_body = self.new.resolve(new_op.get("requestBody")) or {}
        if new_body.get("required") and not old_body.get("required"):
            yield f"{where}: the request body became required"
        new_content = new_body.get("content", {})
        for media_type, media in old_body.get("content", {}).items():
            if new_body and media_type not in new_content:
                yield f"{where}: request body {media_type} no longer accepted"
            elif new_body:
                new_schema = new_content[media_type].get("schema")
                yield from self.input(f"{where}: request body", media.get("schema"), new_schema)

    def responses(self, where: str, old_op: Any, new_op: Any) -> Iterator[str]:
        new_responses = new_op.get("responses", {})
        for status, response in old_op.get("responses", {}).items():
            if not str(status).startswith("2"):
                continue
            if status not in new_responses:
                yield f"{where}: response {status} removed"
                continue
            old_content = self.old.resolve(response).get("content", {})
            new_content = self.new.resolve(new_responses[status]).get("content", {})
            for media_type, media in old_content.items():
                if media_type not in new_content:
                    yield f"{where}: response {status} {media_type} removed"
                    continue
                new_schema = new_content[media_type].get("schema")
                yield from self.output(
                    f"{where}: response {status}", media.get("schema"), new_schema
                )

    def input(self, label: str, old: Any, new: Any, depth: int = 0) -> Iterator[str]:
        """What a client sends: the new schema must accept everything the old one did."""
        a, b = self.old.flatten(old), self.new.flatten(new)
        if depth > MAX_DEPTH:
            return
        if "type" in a and "type" in b and a["type"] != b["type"]:
            yield f"{label}: type changed from {a['type']} to {b['type']}"
            return
        yield from _tightened(label, a, b)
        old_props, new_props = a.get("properties", {}), b.get("properties", {})
        for name in sorted(set(b.get("required", [])) - set(a.get("required", []))):
            yield f"{label}: field {name!r} is now required"
        for name, prop in old_props.items():
            if name in new_props:
                yield from self.input(f"{label}.{name}", prop, new_props[name], depth + 1)
            elif b.get("additionalProperties") is False:
                yield f"{label}: field {name!r} removed"
        if "items" in a and "items" in b:
            yield from self.input(f"{label}[]", a["items"], b["items"], depth + 1)

    def output(self, label: str, old: Any, new: Any, depth: int = 0) -> Iterator[str]:
        """What a client reads: every field it could rely on must still come, as the same type."""
        a, b = self.old.flatten(old), self.new.flatten(new)
        if depth > MAX_DEPTH:
            return
        if "type" in a and "type" in b and a["type"] != b["type"]:
            yield f"{label}: type changed from {a['type']} to {b['type']}"
            return
        if b.get("nullable") and not a.get("nullable"):
            yield f"{label}: may now be null"
        old_props, new_props = a.get("properties", {}), b.get("properties", {})
        for name in sorted(set(a.get("required", [])) - set(b.get("required", []))):
            yield f"{label}: field {name!r} is no longer always present"
        for name, prop in old_props.items():
            if name in new_props:
                yield from self.output(f"{label}.{name}", prop, new_props[name], depth + 1)
            else:
                yield f"{label}: field {name!r} removed"
        if "items" in a and "items" in b:
            yield from self.output(f"{label}[]", a["items"], b["items"], depth + 1)


def _params(spec: Spec, op: Any, item: Any) -> dict[tuple[str, str], Any]:
    """(in, name) -> parameter, path-level ones overridden by the operation's own."""
    merged = {}
    for ref in [*item.get("parameters", []), *op.get("parameters", [])]:
        param = spec.resolve(ref)
        if param["in"] != "path":  # path parameters are matched by position, not name
            merged[(param["in"], param["name"])] = param
    return merged


def _tightened(label: str, a: Schema, b: Schema) -> Iterator[str]:
    """The keywords of one input schema `b` that refuse a value `a` accepted."""
    if a.get("nullable") and not b.get("nullable"):
        yield f"{label}: no longer accepts null"
    if "enum" in b and "enum" not in a:
        yield f"{label}: now restricted to {b['enum']}"
    elif "enum" in b:
        removed = [value for value in a["enum"] if value not in b["enum"]]
        if removed:
            yield f"{label}: enum values removed: {removed}"
    for bound in UPPER_BOUNDS:
        if bound in b and (bound not in a or b[bound] < a[bound]):
            yield f"{label}: {bound} tightened to {b[bound]}"
    for bound in LOWER_BOUNDS:
        if bound in b and (bound not in a or b[bound] > a[bound]):
            yield f"{label}: {bound} tightened to {b[bound]}"
    for key in ("pattern", "format"):
        if key in b and b.get(key) != a.get(key):
            yield f"{label}: {key} changed to {b[key]!r}"
    if b.get("uniqueItems") and not a.get("uniqueItems"):
        yield f"{label}: items must now be unique"
    if b.get("additionalProperties") is False and a.get("additionalProperties") is not False:
        yield f"{label}: additional properties no longer accepted"


def major(version: str) -> int:
    match = re.match(r"\s*v?(\d+)", str(version))
    return int(match.group(1)) if match else 0


def _git(*args: str) -> str | None:
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)  # noqa: S603, S607 - fixed argv
    return result.stdout.strip() if result.returncode == 0 else None


def base_commit(ref: str | None) -> tuple[str, str] | None:
    """(commit, how it was chosen) to compare with, or None when there is no release yet."""
    if ref:
        commit = _git("merge-base", "HEAD", ref)
        if commit is None:
            raise SystemExit(f"breaking-changes: cannot find the merge base of HEAD and {ref}")
        return commit, f"the merge base with {ref}"
    tag = _git("describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", "HEAD")
    return (tag, f"the last release tag {tag}") if tag else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="spec/openapi.yaml")
    parser.add_argument("--changelog", default="spec/CHANGELOG.md")
    parser.add_argument("--base", help="a git ref; default $SPEC_BASE_REF, else the last v* tag")
    args = parser.parse_args(argv)
    changelog = Path(args.changelog).read_text(encoding="utf-8")
    version = yaml.safe_load(Path(args.spec).read_text(encoding="utf-8"))["info"]["version"]
    if not re.search(rf"^## {re.escape(str(version))}\b", changelog, re.MULTILINE):
        print(f"breaking-changes: {args.changelog} has no '## {version}' section for info.version")
        return 1
    base = base_commit(args.base or os.environ.get("SPEC_BASE_REF"))
    if base is None:
        print("breaking-changes: no release tag (v*) yet, so nothing to stay compatible with: pass")
        return 0
    commit, chosen = base
    old_text = _git("show", f"{commit}:{args.spec}")
    if old_text is None:
        print(f"breaking-changes: {args.spec} does not exist at {chosen}: pass")
        return 0
    old = yaml.safe_load(old_text)
    new = yaml.safe_load(Path(args.spec).read_text(encoding="utf-8"))
    return judge(old, new, chosen=chosen, spec_path=args.spec)


def judge(old: dict[str, Any], new: dict[str, Any], *, chosen: str, spec_path: str) -> int:
    """Print the verdict on `new` against the release `old`; 0 when it may ship."""
    problems = find_breaking_changes(old, new)
    old_version, new_version = old["info"]["version"], new["info"]["version"]
    print(f"breaking-changes: {spec_path} {new_version} against {chosen} ({old_version})")
    for problem in problems:
        print(f"  - {problem}")
    refused = find_undeprecated_removals(old, new)
    if refused:
        print(
            f"breaking-changes: {len(refused)} removal(s) of what {chosen} had not deprecated; "
            "mark them `deprecated: true` (with x-sunset) in a release first, whatever the version:"
        )
        for removal in refused:
            print(f"  - {removal}")
        return 1
    if not problems:
        print("breaking-changes: none: pass")
        return 0
    if major(new_version) > major(old_version):
        print(f"breaking-changes: {len(problems)}, allowed by the major version raise: pass")
        return 0
    print(
        f"breaking-changes: {len(problems)} breaking change(s) without a major version raise: "
        "restore compatibility, or raise info.version's major part and say why in "
        "spec/CHANGELOG.md"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
