"""Several `taskapi serve` replicas behind HAProxy, on loopback, as if on several machines.

Each replica is its own process on its own port with its own DATA_DIR; they share only what
replicas share in production: DATABASE_URL, REDIS_URL and JWT_SECRET. HAProxy runs from
`deploy/haproxy/haproxy.cfg` with this machine's ports rendered into a copy, so the example
users start from is the configuration under test. HAProxy connects from its own address
(PROXY_ADDRESS), the only one in the replicas' FORWARDED_ALLOW_IPS; clients use others of
127.0.0.0/8, so that what the replicas see as the client can be told apart from the proxy.

Used by tests/scale and by `python -m bench replicas`. Everything started is stopped on the way
out of `replica_set()`, whatever happened inside.
"""

from __future__ import annotations

import csv
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from tools.live_service import free_port

REPO = Path(__file__).resolve().parent.parent
HAPROXY_CONFIG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
HOST = "127.0.0.1"
PROXY_ADDRESS = "127.0.0.2"
BACKEND = "taskapi"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# What every replica is given: drain longer than HAProxy's fall x inter (2 x 1 s), keep-alive
# longer than its reuse of idle connections, as docs/deployment.md asks of production replicas.
REPLICA_ENV = {
    "HOST": HOST,
    "FORWARDED_ALLOW_IPS": PROXY_ADDRESS,
    "DRAIN_SECONDS": "4",
    "KEEP_ALIVE_TIMEOUT": "65",
    "GRACEFUL_TIMEOUT": "15",
    "PASSWORD_HASH_PROFILE": "CHEAPEST",
    "LOG_LEVEL": "INFO",
    "WORKERS": "1",
    # Load from a few addresses, far beyond one client's production allowance; the login
    # limits keep their defaults.
    "RATE_LIMIT": "1000000/minute",
    # Behind a proxy the metrics are reachable from beyond loopback: they need their token.
    "METRICS_TOKEN": secrets.token_urlsafe(32),
}
# Taken from the caller's environment by nobody: each replica gets exactly what is set here.
_CLEARED = ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "METRICS_TOKEN", "WORKERS")


@dataclass
class Replica:
    """One `taskapi serve` process, which can be stopped, killed and started again."""

    name: str
    port: int
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "replica.log"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self) -> None:
        """Start the process (its log appended to), without waiting for it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "taskapi", "serve"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited while starting: {self.log()[-2000:]}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/v1/readyz", timeout=2).status_code == 200:  # noqa: PLR2004
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} was not ready within {timeout} s")

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait for the exit; the exit status."""
        self.send(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        self.send(signal.SIGKILL)
        return self.wait(STOP_TIMEOUT)

    def send(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit (killed past `timeout`); its exit status."""
        if self.process is None:
            return 0
        try:
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        finally:
            if self._log is not None:
                self._log.close()
            self.process = None


@dataclass
class Balancer:
    """HAProxy in front of the replicas, with its runtime API on a socket of its own."""

    port: int
    config_path: Path
    stats_socket: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def servers(self) -> dict[str, dict[str, str]]:
        """`show stat` for the backend's servers, by name: status (UP, DOWN...), stot..."""
        text = self.command("show stat").removeprefix("# ")
        return {
            row["svname"]: row
            for row in csv.DictReader(text.splitlines())
            if row["pxname"] == BACKEND and row["svname"] not in {"FRONTEND", "BACKEND"}
        }

    def status(self, server: str) -> str:
        return self.servers()[server]["status"]

    def command(self, line: str) -> str:
        """One command of HAProxy's runtime API; its answer."""
        with closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as connection:
            connection.settimeout(5)
            connection.connect(str(self.stats_socket))
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def set_in_rotation(self, server: str, *, routed: bool) -> None:
        """Put `server` in maintenance (no traffic) or back to ready."""
        self.command(f"set server {BACKEND}/{server} state {'ready' if routed else 'maint'}")

    def wait_for(self, server: str, status: str, timeout: float = START_TIMEOUT) -> float:
        """Wait until HAProxy says `server` is `status` (UP, DOWN; not "UP 1/2", which is on
        its way down); the seconds it took."""
        started = time.monotonic()
        while (waited := time.monotonic() - started) < timeout:
            if self.status(server) == status:
                return waited
            time.sleep(0.05)
        raise TimeoutError(f"HAProxy did not see {server} {status} within {timeout} s")


@dataclass
class ReplicaSet:
    replicas: list[Replica]
    balancer: Balancer

    @property
    def base_url(self) -> str:
        return self.balancer.base_url

    def restart(self, replica: Replica) -> tuple[int, float, float]:
        """SIGTERM `replica`, wait for its exit, start it, wait until HAProxy routes to it
        again: (exit status, seconds to exit, seconds until back in rotation)."""
        started = time.monotonic()
        exit_status = replica.terminate()
        stopped = time.monotonic() - started
        replica.start()
        replica.wait_until_ready()
        self.balancer.wait_for(replica.name, "UP")
        return exit_status, stopped, time.monotonic() - started


def render_config(
    template: str, *, port: int, stats_socket: Path, replicas: Sequence[tuple[str, int]]
) -> str:
    """The example configuration with this machine's addresses: the front on HOST:port,
    connections to replicas from PROXY_ADDRESS, one `server` line per replica (with the
    options of the example's first), and the runtime API on `stats_socket`."""
    rendered = {
        "bind": f"bind {HOST}:{port}",
        "source": f"source {PROXY_ADDRESS}",
        "stats": f"stats socket {stats_socket} mode 600 level admin",
    }
    out: list[str] = []
    seen: set[str] = set()
    for line in template.splitlines():
        words = line.split() or [""]
        indent = line[: len(line) - len(line.lstrip())]
        if words[0] == "server":
            if "server" not in seen:
                out.extend(
                    " ".join([f"{indent}server", name, f"{HOST}:{port}", *words[3:]])
                    for name, port in replicas
                )
        elif words[0] in rendered:
            out.append(indent + rendered[words[0]])
        else:
            out.append(line)
        seen.add(words[0])
    missing = {"server", *rendered} - seen
    if missing:
        raise ValueError(f"{HAPROXY_CONFIG} has no {', '.join(sorted(missing))} line to render")
    return "\n".join(out) + "\n"


def replica_environment(
    *, database_url: str, redis_url: str, secret: str, workdir: Path, port: int
) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in _CLEARED}
    return {
        **environment,
        **REPLICA_ENV,
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": secret,
        "DATA_DIR": str(workdir / "data"),
    }


def _start_balancer(workdir: Path, replicas: Sequence[Replica]) -> Balancer:
    balancer = Balancer(
        port=free_port(),
        config_path=workdir / "haproxy.cfg",
        stats_socket=workdir / "haproxy.sock",
    )
    balancer.stats_socket.unlink(missing_ok=True)  # left by an earlier run in this folder
    balancer.config_path.write_text(
        render_config(
            HAPROXY_CONFIG.read_text(encoding="utf-8"),
            port=balancer.port,
            stats_socket=balancer.stats_socket,
            replicas=[(replica.name, replica.port) for replica in replicas],
        ),
        encoding="utf-8",
    )
    with (workdir / "haproxy.log").open("ab") as log:
        balancer.process = subprocess.Popen(  # noqa: S603 - our own command line, no shell
            ["haproxy", "-db", "-f", str(balancer.config_path)],  # noqa: S607 - Debian's haproxy
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return balancer


def _stop_balancer(balancer: Balancer) -> None:
    if balancer.process is not None and balancer.process.poll() is None:
        balancer.process.terminate()
        try:
            balancer.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            balancer.process.kill()
            balancer.process.wait()


@contextmanager
def replica_set(
    *,
    count: int,
    database_url: str,
    redis_url: str,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    secret: str | None = None,
) -> Iterator[ReplicaSet]:
    """`count` replicas and HAProxy in front, every server UP; all stopped at the end. They
    sign with `secret` (a fresh one by default)."""
    secret = secret or secrets.token_urlsafe(48)
    replicas = []
    for number in range(1, count + 1):
        port = free_port()
        folder = workdir / f"replica{number}"
        environment = replica_environment(
            database_url=database_url, redis_url=redis_url, secret=secret, workdir=folder, port=port
        )
        replicas.append(Replica(f"replica{number}", port, folder, {**environment, **(env or {})}))
    balancer: Balancer | None = None
    try:
        # The release's one-off migration job (docs/deployment.md), then every replica at once.
        subprocess.run(
            [sys.executable, "-m", "taskapi", "migrate"],
            env=replicas[0].env,
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT,
        )
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_until_ready()
        balancer = _start_balancer(workdir, replicas)
        _wait_for_socket(balancer)
        for replica in replicas:
            balancer.wait_for(replica.name, "UP")
        yield ReplicaSet(replicas, balancer)
    finally:
        if balancer is not None:
            _stop_balancer(balancer)
        for replica in replicas:  # all at once: each drains for DRAIN_SECONDS
            replica.send(signal.SIGTERM)
        for replica in replicas:
            replica.wait()


def _wait_for_socket(balancer: Balancer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not balancer.stats_socket.exists():
        if balancer.process is not None and balancer.process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {balancer.process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError("haproxy did not open its runtime API socket")
        time.sleep(0.05)
