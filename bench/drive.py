"""Load generation with wrk (Debian's package), bounded in time.

One Lua script (`lua/request.lua`) shapes every request from environment variables (method,
JSON body, bearer token) and prints wrk's figures as a JSON line, read back here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.serve import pinned

SCRIPT = Path(__file__).resolve().parent / "lua" / "request.lua"
_MARKER = "BENCH_RESULT "


@dataclass(frozen=True, kw_only=True)
class Call:
    """One HTTP request, repeated by wrk."""

    method: str
    path: str
    body: str | None = None
    token: str | None = None


@dataclass(frozen=True, kw_only=True)
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    # Non-2xx/3xx answers, and connect/read/write errors and timeouts.
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    return found


def wrk(
    base_url: str,
    call: Call,
    *,
    seconds: float,
    connections: int,
    cpus: str | None,
) -> Measurement:
    """Drive `call` on `base_url` with one wrk thread and `connections` connections, for
    `seconds` (whole seconds, at least one: wrk's unit)."""
    command = [
        require_wrk(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--script",
        str(SCRIPT),
        base_url + call.path,
    ]
    env = {
        **os.environ,
        "BENCH_METHOD": call.method,
        "BENCH_BODY": call.body or "",
        "BENCH_TOKEN": call.token or "",
    }
    done = subprocess.run(
        pinned(command, cpus), env=env, capture_output=True, text=True, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_MARKER)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    figures = json.loads(line.removeprefix(_MARKER))
    return Measurement(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=figures["status_errors"] + figures["socket_errors"],
    )
