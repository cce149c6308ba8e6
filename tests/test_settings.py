"""Settings are read as declared, bad or exposing values are refused at start-up naming the
variable, and the README documents exactly what is declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskapi.settings import (
    PoolSettings,
    Settings,
    SettingsError,
    declared_settings,
    settings_table,
)

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


README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_the_declared_one() -> None:
    table = settings_table()
    readme = README.read_text(encoding="utf-8")

    assert table in readme, f"README.md's settings table must read:\n{table}"


def test_every_declared_variable_is_read_from_the_environment() -> None:
    environ = {declared.variable: "7" for declared in declared_settings() if declared.kind is int}
    environ["DB_STATEMENT_TIMEOUT_MS"] = "7"

    read = Settings.from_env(environ)

    assert {d.variable: d.value for d in declared_settings(read) if d.kind is int} == dict.fromkeys(
        environ, 7
    )


def test_a_group_of_settings_keeps_its_parents_defaults() -> None:
    assert Settings.from_env({"DB_POOL_SIZE": "6"}).pool == PoolSettings(
        size=6, statement_timeout_ms=Settings().pool.statement_timeout_ms
    )
    assert Settings().pool.statement_timeout_ms > PoolSettings().statement_timeout_ms == 0


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"PORT": "0"}, "PORT must be between 1 and 65535"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE must be at least 1"),
        ({"GRACEFUL_TIMEOUT": "-1"}, "GRACEFUL_TIMEOUT must not be negative"),
        ({"WORKERS": "two"}, "WORKERS must be a whole number"),
        ({"RATE_LIMIT": "often"}, "RATE_LIMIT is not a rate limit"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
    ],
)
def test_a_bad_value_fails_naming_its_variable(environ: dict[str, str], complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_env(environ)


def test_a_refused_secret_is_not_repeated_in_the_message() -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET must be at least 32") as refused:
        Settings.from_env({"JWT_SECRET": "hunter2-is-short"})

    assert "hunter2" not in str(refused.value)


def test_database_url_defaults_to_a_file_in_the_data_dir() -> None:
    assert Settings.from_env({"DATA_DIR": "/srv/data"}).database_url == (
        "sqlite:////srv/data/taskapi.sqlite3"
    )
    assert Settings.from_env({"LOG_LEVEL": "debug"}).log_level == "DEBUG"
