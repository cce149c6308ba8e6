"""Serving each service the same way: uvicorn, the same flags, the same environment.

Every service runs `python -m uvicorn <app> --loop uvloop --http httptools --no-access-log` on
127.0.0.1 with the same worker count, database, JWT secret and pool settings, pinned with
taskset to the server CPU when asked to.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

# The ASGI app of each service, as uvicorn imports it (the peers build theirs in a factory,
# so that importing them, as the tests do, has no side effects).
APPS = {
    "taskapi": ["taskapi.asgi:app"],
    "fastapi": ["--factory", "bench.peers.fastapi_app:from_env"],
    "starlette": ["--factory", "bench.peers.starlette_app:from_env"],
    "floor": ["--factory", "bench.peers.floor_app:from_env"],
    # The floor's get one task, PostgreSQL reached five ways (bench.pg_access).
    "pg-loop": ["--factory", "bench.pg_access:loop"],
    "pg-threads": ["--factory", "bench.pg_access:threads"],
    "pg-pipeline": ["--factory", "bench.pg_access:pipeline"],
    "pg-async": ["--factory", "bench.pg_access:async_in_turn"],
    "pg-async-pipeline": ["--factory", "bench.pg_access:async_pipeline"],
}

# taskapi's limits would answer the load with 429s: raised out of reach (the middleware still
# runs, so its cost is measured). LOG_LEVEL=WARNING switches off its per-request access record,
# as --no-access-log does uvicorn's for every service.
TASKAPI_ENV = {
    "RATE_LIMIT": "1000000000/minute",
    "LOGIN_RATE_LIMIT_PER_ACCOUNT_AND_CLIENT": "1000000000/minute",
    "LOGIN_RATE_LIMIT_PER_ACCOUNT": "1000000000/minute",
    "LOGIN_RATE_LIMIT_PER_CLIENT": "1000000000/minute",
    "REFRESH_RATE_LIMIT_PER_CLIENT": "1000000000/minute",
    "REGISTRATION_RATE_LIMIT_PER_CLIENT": "1000000000/minute",
    "LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    """`command` under `taskset -c cpus` when taskset exists and cpus are given."""
    if cpus is None or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", cpus, *command]


@dataclass
class Server:
    """One running service."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss_kib(self) -> int:
        """Resident memory of the server process (the worker, with one worker)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def start(
    name: str,
    *,
    label: str | None = None,
    env: Mapping[str, str],
    workers: int,
    cpus: str | None,
    log_dir: Path,
    probe_path: str,
    probe_headers: Mapping[str, str],
    as_deployed: bool = False,
) -> Server:
    """Start `name` and wait until it answers `probe_path` with a success. `label` names the
    server and its log (the service's name by default). `as_deployed` serves taskapi through
    `taskapi serve` whatever the worker count."""
    label = label or name
    port = free_port()
    # A run's own `env` wins (the registration flood keeps taskapi's registration limit).
    environment = {**os.environ, **(TASKAPI_ENV if name == "taskapi" else {}), **env}
    if name == "taskapi" and (as_deployed or workers > 1):
        # Several workers are served as taskapi is deployed, by `taskapi serve`: its supervisor
        # gives each worker a listening socket of its own (taskapi.serving.BalancedWorkers).
        command = [sys.executable, "-m", "taskapi.cli", "serve", "--workers", str(workers)]
        environment |= {"HOST": HOST, "PORT": str(port)}
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            *APPS[name],
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        pinned(command, cpus), cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(name=label, port=port, process=process, log_path=log_path, _log=log)
    try:
        _wait_until_ready(server, probe_path, probe_headers)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: Server, path: str, headers: Mapping[str, str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{server.name} exited at start-up:\n{tail}")
        request = urllib.request.Request(server.base_url + path, headers=dict(headers))
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=5) as answer:
            if answer.status < 400:  # noqa: PLR2004
                return
        time.sleep(0.2)
    raise SystemExit(f"{server.name} did not answer {path} within 60 s ({server.log_path})")


def worker_label(name: str, workers: int) -> str:
    """How a service is named when it runs once per worker count."""
    return f"{name} x{workers}"


@contextlib.contextmanager
def running(
    names: Sequence[str],
    *,
    env: Mapping[str, str],
    workers: int | Sequence[int],
    cpus: str | None,
    log_dir: Path,
    probe_path: str,
    probe_headers: Mapping[str, str],
) -> Iterator[dict[str, Server]]:
    """All of `names` running at once (idle ones cost nothing), stopped on the way out. Given
    several worker counts, each service runs once per count, named by `worker_label`, and
    taskapi runs as deployed at every count, so that the counts differ in nothing else."""
    counts = [workers] if isinstance(workers, int) else list(workers)
    servers: dict[str, Server] = {}
    try:
        for name in names:
            for count in counts:
                label = name if len(counts) == 1 else worker_label(name, count)
                servers[label] = start(
                    name,
                    label=label,
                    env=env,
                    workers=count,
                    cpus=cpus,
                    log_dir=log_dir,
                    probe_path=probe_path,
                    probe_headers=probe_headers,
                    as_deployed=len(counts) > 1,
                )
        yield servers
    finally:
        for server in servers.values():
            server.stop()
