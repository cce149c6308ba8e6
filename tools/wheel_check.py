"""The artifact as a deployment installs it: build the wheel, install it into a fresh virtual
environment outside the checkout, migrate a scratch database, serve, and use it.

    python -m tools.wheel_check [--postgres SERVER_URL]

Passes when the installed service registers a user (201), logs them in (200), and serves a spec
whose `info.version` is the installed package's version.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import venv
from collections.abc import Mapping
from pathlib import Path

from tools.live_service import REPO, run

CHECKED_STATUSES = {"register": 201, "log in": 200}


def build_and_install(folder: Path) -> Path:
    """The wheel of this checkout installed into a new environment in `folder`; its `taskapi`."""
    wheels = folder / "wheels"
    subprocess.run(  # noqa: S603 - our own command line
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = wheels.glob("taskapi-*.whl")
    environment = folder / "venv"
    venv.create(environment, with_pip=True)
    subprocess.run(  # noqa: S603 - our own command line
        [str(environment / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        cwd=folder,
    )
    return environment / "bin" / "taskapi"


def call(url: str, body: Mapping[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL of our own
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, json.load(response)


def use_live_service() -> int:
    """Run under tools.live_service against the installed service (TASKAPI_URL)."""
    base = os.environ["TASKAPI_URL"]
    account = {"email": "wheel@example.com", "password": "a wheel installs and serves"}
    statuses = {
        "register": call(f"{base}/users", {**account, "name": "Wheel Check", "age": 30})[0],
        "log in": call(f"{base}/auth/token", account)[0],
    }
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:  # noqa: S310
        served_version = json.load(response)["info"]["version"]
    installed_version = subprocess.run(  # noqa: S603 - our own command line
        [os.environ["TASKAPI_COMMAND"], "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"wheel-check: {statuses}, served {served_version}, installed {installed_version}")
    ok = statuses == CHECKED_STATUSES and served_version == installed_version
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL; default: SQLite")
    parser.add_argument("--against-live", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.against_live:
        return use_live_service()
    with tempfile.TemporaryDirectory(prefix="taskapi-wheel-") as scratch:
        taskapi = build_and_install(Path(scratch))
        os.environ["TASKAPI_COMMAND"] = str(taskapi)
        return run(
            [sys.executable, "-m", "tools.wheel_check", "--against-live"],
            args.postgres or None,
            taskapi=taskapi,
        )


if __name__ == "__main__":
    sys.exit(main())
