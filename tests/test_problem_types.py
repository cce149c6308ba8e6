"""The problem types the code answers with are the ones the spec's table documents, and every
domain error declares one of them."""

from __future__ import annotations

import re
from collections.abc import Iterator

from taskapi import errors
from taskapi.spec import load_spec
from taskapi.web.problems import PROBLEM_TYPES

# A row of the spec's table: | `tag:...:problem/<slug>` | <status> | <meaning> |
_TABLE_ROW = re.compile(r"^\| `(?P<uri>[^`]+)` \| (?P<status>\d{3}) \|", re.MULTILINE)


def spec_problem_types() -> dict[str, int]:
    description = load_spec()["info"]["description"]
    return {row["uri"]: int(row["status"]) for row in _TABLE_ROW.finditer(description)}


def domain_error_classes(cls: type[errors.DomainError] = errors.DomainError) -> Iterator[type]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from domain_error_classes(subclass)


def test_spec_table_of_problem_types_equals_the_code_table() -> None:
    in_code = {problem.uri: problem.status for problem in PROBLEM_TYPES.values()}

    assert spec_problem_types() == in_code


def test_every_domain_error_declares_a_problem_type_of_the_table() -> None:
    undeclared = {
        cls.__name__: getattr(cls, "problem_type", None)
        for cls in domain_error_classes()
        if getattr(cls, "problem_type", None) not in PROBLEM_TYPES
    }

    assert not undeclared
