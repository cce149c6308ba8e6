"""The operator's command line: the only way to make an admin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from taskapi.cli import main
from taskapi.db import Database
from taskapi.models import User


@pytest.fixture
def database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PASSWORD_HASH_PROFILE", "CHEAPEST")
    return url


def _role_of(url: str, email: str) -> str | None:
    database = Database.connect(url)
    try:
        with database.transaction() as session:
            return session.scalar(select(User.role).where(User.email == email))
    finally:
        database.dispose()


def test_create_admin_registers_a_new_admin_with_a_password_from_stdin(
    database_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long admin passphrase\n"))

    main(["create-admin", "--email", "Root@Example.com", "--password-stdin"])

    assert _role_of(database_file, "root@example.com") == "admin"


def test_create_admin_promotes_an_existing_account(
    database_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long admin passphrase\n"))
    main(["create-admin", "--email", "ops@example.com", "--password-stdin"])

    main(["create-admin", "--email", "OPS@example.com"])  # exists: no password asked

    assert _role_of(database_file, "ops@example.com") == "admin"


def test_create_admin_refuses_a_short_password(
    database_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))

    with pytest.raises(SystemExit):
        main(["create-admin", "--email", "x@example.com", "--password-stdin"])

    assert _role_of(database_file, "x@example.com") is None
