"""The checks that judge the live contract runs: schemathesis's link coverage and Prism's log."""

from __future__ import annotations

import json
from typing import Any

from tools.link_coverage import link_coverage
from tools.prism_proxy import violations


def _scenario(*transitions: tuple[str, bool], status: str = "success") -> str:
    cases: dict[str, Any] = {
        f"c{n}": {"transition": {"id": link}, "is_transition_applied": applied}
        for n, (link, applied) in enumerate(transitions)
    }
    cases["root"] = {"transition": None}
    event = {"phase": "stateful", "status": status, "is_final": False, "recorder": {"cases": cases}}
    return json.dumps({"ScenarioFinished": event})


LOADED = json.dumps({"LoadingFinished": {"statistic": {"transitions": {"total": 5}}}})


def test_link_coverage_counts_each_applied_link_once() -> None:
    report = [
        LOADED,
        _scenario(("POST /tasks -> [201] GetTask", True), ("POST /tasks -> [201] GetTask", True)),
        _scenario(("POST /tasks -> [201] UpdateTask", True)),
    ]

    coverage = link_coverage(report)

    assert coverage.covered == {"POST /tasks -> [201] GetTask", "POST /tasks -> [201] UpdateTask"}
    assert coverage.total == 5


def test_link_coverage_ignores_links_not_applied_and_skipped_or_final_scenarios() -> None:
    final = json.loads(_scenario(("POST /users -> [201] LogIn", True)))
    final["ScenarioFinished"]["is_final"] = True
    report = [
        LOADED,
        _scenario(("POST /tasks -> [201] DeleteTask", False)),
        _scenario(("POST /users -> [201] GetUser", True), status="skip"),
        json.dumps(final),
    ]

    assert link_coverage(report).covered == frozenset()


def test_prism_violations_are_found_in_its_log_and_ordinary_lines_are_not() -> None:
    log = "\n".join(
        [
            '[PROXY] info > Forwarding "post" request to http://127.0.0.1:1/v1/users...',
            "[VALIDATOR] warning Violation: response.body Response body must have property 'id'",
            "[HTTP SERVER] post /users error Request terminated with error: UNPROCESSABLE_ENTITY",
            "[PROXY] info The upstream call to /users has returned 201",
        ]
    )

    assert len(violations(log)) == 2
