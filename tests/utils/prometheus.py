"""Prometheus for the tests: its binaries (Debian's `prometheus` package, installed in CI by
.ci/ensure-prometheus), and the series our alert rules and dashboard read."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = REPO / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "taskapi.json"
_SERIES = re.compile(r"\b(taskapi_[a-z_]+|up)\b")


def prometheus_binary(name: str) -> str:
    """The path of `prometheus` or `promtool`; in CI its absence fails, elsewhere it skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: .ci/run installs it with .ci/ensure-prometheus")
        pytest.skip(f"needs {name} (bash .ci/ensure-prometheus installs it, as root)")
    return path


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def series_used() -> frozenset[str]:
    """Every series name the rules and the dashboard query."""
    return frozenset(
        name
        for expression in [*rule_expressions(), *dashboard_expressions()]
        for name in _SERIES.findall(expression)
    )
