"""Real server processes (`taskapi serve --workers N`) on free loopback ports, for tests/ops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.tcp_proxy import free_port

METRICS_TOKEN = "ops-test-metrics-token-that-is-long-enough"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
# Settings a test server takes from the environment; anything else set in the test run's own
# environment is dropped, so the server sees exactly what the test says.
_CLEARED = ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "METRICS_TOKEN", "WORKERS")


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of the exposition, summed over every worker (0 if absent)."""
        response = httpx.get(
            f"{self.base_url}/v1/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        return sum(
            sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


def wait_until_ready(
    base_url: str,
    *,
    timeout: float,
    process: subprocess.Popen[bytes],
    path: str = "/v1/readyz",
) -> None:
    """Until `path` answers 200; RuntimeError if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} while starting")
        try:
            if httpx.get(f"{base_url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server at {base_url} was not ready within {timeout} s")


@contextmanager
def running_server(
    *, database_url: str, workdir: Path, workers: int = 2, env: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """`taskapi serve --workers N` on a free port of 127.0.0.1, stopped (SIGTERM) at the end."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    environment = {key: value for key, value in os.environ.items() if key not in _CLEARED}
    environment.update(
        HOST="127.0.0.1",
        PORT=str(port),
        DATABASE_URL=database_url,
        DATA_DIR=str(workdir / "data"),
        JWT_SECRET="ops-test-signing-secret-that-is-long-enough",
        PASSWORD_HASH_PROFILE="CHEAPEST",
        RATE_LIMIT="100000/minute",
        LOGIN_RATE_LIMIT_PER_ACCOUNT_AND_CLIENT="10000/minute",
        LOGIN_RATE_LIMIT_PER_ACCOUNT="10000/minute",
        LOGIN_RATE_LIMIT_PER_CLIENT="10000/minute",
        REFRESH_RATE_LIMIT_PER_CLIENT="10000/minute",
        REGISTRATION_RATE_LIMIT_PER_CLIENT="10000/minute",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
        METRICS_TOKEN=METRICS_TOKEN,
    )
    environment.update(env or {})  # the test's own settings win
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own command line, no shell
            [sys.executable, "-m", "taskapi", "serve", "--workers", str(workers)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_ready(server.base_url, timeout=START_TIMEOUT, process=process)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
