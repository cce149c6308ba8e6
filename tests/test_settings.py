"""Settings that would expose the service are refused at start-up, naming the variable."""

from __future__ import annotations

import pytest

from taskapi.settings import Settings, SettingsError

TOKEN = "a-metrics-token-that-is-long-enough-000"


@pytest.mark.parametrize(
    "exposed",
    [
        {"HOST": "0.0.0.0"},  # noqa: S104 - the case under test
        {"HOST": "::"},
        {"HOST": "api.example.com"},
        {"FORWARDED_ALLOW_IPS": "10.0.0.1"},
    ],
)
def test_metrics_need_their_token_when_reachable_beyond_loopback(exposed: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="METRICS_TOKEN must be set"):
        Settings.from_env(exposed)

    assert Settings.from_env({**exposed, "METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    assert not Settings.from_env({**exposed, "METRICS_ENABLED": "false"}).metrics_enabled


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost"])
def test_metrics_may_go_without_a_token_on_loopback(host: str) -> None:
    assert Settings.from_env({"HOST": host}).metrics_enabled


def test_docs_ui_can_be_switched_off() -> None:
    assert not Settings.from_env({"DOCS_UI_ENABLED": "off"}).docs_ui_enabled
    with pytest.raises(SettingsError, match="DOCS_UI_ENABLED"):
        Settings.from_env({"DOCS_UI_ENABLED": "maybe"})
