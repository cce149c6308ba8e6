"""The operator's command line: the only way to make an admin."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from taskapi.cli import main
from taskapi.db import Database
from taskapi.models import User
from taskapi.settings import Settings


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


def test_create_admin_refuses_a_weak_password_saying_why(
    database_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("password1234\n"))

    with pytest.raises(SystemExit, match="too easy to guess"):
        main(["create-admin", "--email", "weak@example.com", "--password-stdin"])

    assert _role_of(database_file, "weak@example.com") is None


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask, under which new files are 0644 unless created private."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
def test_a_new_sqlite_database_and_signing_secret_are_private_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{data / 'service.sqlite3'}")
    monkeypatch.setenv("DATA_DIR", str(data))

    main(["migrate"])
    Settings.from_env().signing_secret()

    assert stat.S_IMODE((data / "service.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "jwt-secret").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
