"""The alert rules (deploy/prometheus/alerts.yml) are valid and do what their unit tests say;
the dashboard's queries (deploy/grafana/taskapi.json) are valid PromQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.utils.prometheus import ALERT_TESTS, ALERTS, dashboard_expressions, prometheus_binary


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command line
        [prometheus_binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_alert_rules_are_valid() -> None:
    checked = promtool("check", "rules", str(ALERTS))

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_fires_on_its_failure_and_not_short_of_it() -> None:
    tested = promtool("test", "rules", str(ALERT_TESTS))

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # Each query as a recording rule: `promtool check rules` parses every expression.
    rules = [
        {"record": f"dashboard:query_{n}", "expr": expression.replace("$__rate_interval", "5m")}
        for n, expression in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    checked = promtool("check", "rules", str(path))

    assert checked.returncode == 0, checked.stdout + checked.stderr
