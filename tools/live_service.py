"""Run a command against the service started as a user would: `taskapi serve` on a free port.

    python -m tools.live_service [--postgres SERVER_URL] [--taskapi PATH] -- COMMAND [ARG...]

The service gets a scratch database of its own (a new SQLite file, or a new database on the
PostgreSQL server given, dropped afterwards), an admin made with `taskapi create-admin` the way
an operator makes one, and limits high enough for a test run. COMMAND then runs with
TASKAPI_URL (the base URL, ending in /v1), TASKAPI_ADMIN_EMAIL, TASKAPI_ADMIN_PASSWORD and
TASKAPI_PID (the server process) set,
and its exit status is this command's. The service's log is kept in test-results/.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parent.parent
TASKAPI = REPO / ".venv" / "bin" / "taskapi"
RESULTS = REPO / "test-results"
ADMIN_EMAIL = "contract-admin@example.com"
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def scratch_database(postgres_server: str | None, folder: Path) -> Iterator[str]:
    """A database URL no one else uses, gone afterwards."""
    if not postgres_server:
        yield f"sqlite:///{folder / 'live.sqlite3'}"
        return
    name = f"taskapi_live_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait_until_answering(probe: str, process: subprocess.Popen[bytes], *, name: str) -> None:
    """Wait until `probe` answers, for at most START_TIMEOUT_SECONDS, or until `process` dies."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(probe, timeout=2):  # noqa: S310 - our URL
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{name}: no answer from {probe} in {START_TIMEOUT_SECONDS}s")


def service_environment(database_url: str, data_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET": secrets.token_urlsafe(32),
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        # Test traffic from one address, far beyond what one client is allowed in production.
        "RATE_LIMIT": "1000000/minute",
        "LOGIN_RATE_LIMIT_PER_ACCOUNT_AND_CLIENT": "1000000/minute",
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": "1000000/minute",
        "LOGIN_RATE_LIMIT_PER_CLIENT": "1000000/minute",
        "REFRESH_RATE_LIMIT_PER_CLIENT": "1000000/minute",
        "REGISTRATION_RATE_LIMIT_PER_CLIENT": "1000000/minute",
        "PASSWORD_HASH_PROFILE": "CHEAPEST",
        "VALIDATE_RESPONSES": "true",
    }


def run(
    command: list[str], postgres_server: str | None, workers: int = 1, taskapi: Path = TASKAPI
) -> int:
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="taskapi-live-") as scratch:
        folder = Path(scratch)
        with scratch_database(postgres_server, folder) as database_url:
            port = free_port()
            env = service_environment(database_url, folder, port)
            password = secrets.token_urlsafe(18)
            # As an operator deploys: migrate, make the first admin, serve.
            subprocess.run([str(taskapi), "migrate"], env=env, check=True)  # noqa: S603
            subprocess.run(  # noqa: S603 - our own command line
                [str(taskapi), "create-admin", "--email", ADMIN_EMAIL, "--password-stdin"],
                input=f"{password}\n".encode(),
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            url = f"http://127.0.0.1:{port}/v1"
            with (RESULTS / "live-service.log").open("ab") as log:
                service = subprocess.Popen(  # noqa: S603 - our own command line
                    [str(taskapi), "serve", "--workers", str(workers)],
                    env=env,
                    # Outside the checkout, as an installed service runs.
                    cwd=folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    wait_until_answering(f"{url}/openapi.json", service, name="live-service")
                    print(f"live-service: {url} on {make_url(database_url).get_backend_name()}")
                    return subprocess.call(  # noqa: S603 - the caller's command
                        command,
                        env={
                            **env,
                            "TASKAPI_URL": url,
                            "TASKAPI_ADMIN_EMAIL": ADMIN_EMAIL,
                            "TASKAPI_ADMIN_PASSWORD": password,
                            "TASKAPI_PID": str(service.pid),
                        },
                    )
                finally:
                    service.terminate()
                    service.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL; default: SQLite")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers to serve with")
    parser.add_argument(
        "--taskapi", type=Path, default=TASKAPI, help="the taskapi command to serve with"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run against the service")
    return run(command, args.postgres or None, args.workers, args.taskapi)


if __name__ == "__main__":
    sys.exit(main())
